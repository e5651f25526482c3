#!/usr/bin/env python3
"""Print the call-relevant events of AMI capture files (noise such as VarSet left out).

.venv/bin/python lab/asterisk/summarize.py tests/data/asterisk/answered.ami [...]
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from calld.adapters.asterisk.ami_codec import AmiParser

NOISE = {
    "VarSet",
    "Newexten",
    "TestEvent",
    "DeviceStateChange",
    "NewConnectedLine",
    "NewCallerid",
    "SuccessfulAuth",
    "FullyBooted",
    "RTCPSent",
    "RTCPReceived",
    "ChallengeSent",
    "NewAccountCode",
    "ContactStatus",
    "PeerStatus",
    "Registry",
    "DialState",
    "BridgeCreate",
    "BridgeDestroy",
    "Cdr",
    "InvalidAccountID",
    "DTMFBegin",
    "ChannelTalkingStart",
    "ChannelTalkingStop",
    "LocalBridge",
    "MusicOnHoldStart",
    "MusicOnHoldStop",
    "HangupRequest",
    "SoftHangupRequest",
}
SHOW = [
    "Channel",
    "ChannelStateDesc",
    "Uniqueid",
    "Linkedid",
    "Context",
    "Exten",
    "DestChannel",
    "DialStatus",
    "Cause",
    "Cause-txt",
    "ChanVariable",
    "Digit",
    "Direction",
    "Conference",
    "Result",
    "TransfereeChannel",
    "TransferTargetChannel",
    "TransferExten",
    "TransferContext",
    "DestType",
    "Response",
    "Message",
    "Reason",
    "BridgeUniqueid",
    "IsExternal",
    "OrigTransfererChannel",
    "SecondTransfererChannel",
    "Shutdown",
    "Restart",
]


def main() -> None:
    verbose = "-v" in sys.argv
    for name in [a for a in sys.argv[1:] if a != "-v"]:
        parser = AmiParser()
        msgs = parser.feed(Path(name).read_bytes())
        counts = Counter(m.event or f"Response:{m.response}" for m in msgs)
        print(f"== {name}: {len(msgs)} messages; {dict(sorted(counts.items()))}")
        for m in msgs:
            kind = m.event or f"Response:{m.response}"
            if m.event in NOISE and not verbose:
                continue
            fields = " ".join(f"{k}={m[k]}" for k in SHOW if m.get(k))
            print(f"  {m.get('Timestamp', ''):>18} {kind:<22} {fields}")


if __name__ == "__main__":
    main()
