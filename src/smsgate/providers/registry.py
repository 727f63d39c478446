"""channel_no -> adapter class, and the rules a channel of that type must meet."""

from __future__ import annotations

from smsgate.providers import aliyun, huawei, loopback, qiniu, tencent, twilio
from smsgate.providers.aliyun import AliyunAdapter
from smsgate.providers.base import AdapterFactory
from smsgate.providers.channel_rules import ChannelDraft, ChannelProblem, ChannelValidator
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


# The rules a channel of each type must meet when it is saved (next to each adapter).
VALIDATORS: dict[str, ChannelValidator] = {
    LoopbackAdapter.channel_no: loopback.validate_channel,
    AliyunAdapter.channel_no: aliyun.validate_channel,
    TencentAdapter.channel_no: tencent.validate_channel,
    QiniuAdapter.channel_no: qiniu.validate_channel,
    HuaweiAdapter.channel_no: huawei.validate_channel,
    TwilioAdapter.channel_no: twilio.validate_channel,
}


def channel_problems(draft: ChannelDraft) -> list[ChannelProblem]:
    """Everything wrong with `draft` for its channel type (empty: it may be saved)."""
    validate = VALIDATORS.get(draft.channel_no)
    if validate is None:
        known = ", ".join(sorted(ADAPTERS))
        return [ChannelProblem("channelNo", f"{draft.channel_no!r} is not one of {known}")]
    return validate(draft)


def adapter_for(channel_no: str) -> AdapterFactory | None:
    return ADAPTERS.get(channel_no)
