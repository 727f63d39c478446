"""channel_no -> adapter class."""

from __future__ import annotations

from smsgate.providers.aliyun import AliyunAdapter
from smsgate.providers.base import AdapterFactory
from smsgate.providers.huawei import HuaweiAdapter
from smsgate.providers.loopback import LoopbackAdapter
from smsgate.providers.qiniu import QiniuAdapter
from smsgate.providers.tencent import TencentAdapter
from smsgate.providers.twilio import TwilioAdapter

ADAPTERS: dict[str, AdapterFactory] = {
    LoopbackAdapter.channel_no: LoopbackAdapter,
    AliyunAdapter.channel_no: AliyunAdapter,
    TencentAdapter.channel_no: TencentAdapter,
    QiniuAdapter.channel_no: QiniuAdapter,
    HuaweiAdapter.channel_no: HuaweiAdapter,
    TwilioAdapter.channel_no: TwilioAdapter,
}


def adapter_for(channel_no: str) -> AdapterFactory | None:
    return ADAPTERS.get(channel_no)
