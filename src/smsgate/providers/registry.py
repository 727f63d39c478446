"""channel_no -> adapter class."""

from __future__ import annotations

from smsgate.providers.aliyun import AliyunAdapter
from smsgate.providers.base import AdapterFactory
from smsgate.providers.loopback import LoopbackAdapter
from smsgate.providers.tencent import TencentAdapter

ADAPTERS: dict[str, AdapterFactory] = {
    LoopbackAdapter.channel_no: LoopbackAdapter,
    AliyunAdapter.channel_no: AliyunAdapter,
    TencentAdapter.channel_no: TencentAdapter,
}


def adapter_for(channel_no: str) -> AdapterFactory | None:
    return ADAPTERS.get(channel_no)
