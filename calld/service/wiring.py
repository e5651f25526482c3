"""The parts the daemon hands to the transports, and the services built over them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from calld.adapters.port import SwitchPort
from calld.cluster.leadership import Elector
from calld.config import Config
from calld.outbound.outbox import Outbox
from calld.service.calls import CallService
from calld.service.clients import ClientService
from calld.service.control import CallControl
from calld.service.live_feed import LiveHub
from calld.service.metrics import Metrics
from calld.service.provider import ProviderDeliveries
from calld.service.provider_events import ProviderEvents
from calld.service.recording_files import RecordingFiles
from calld.service.sip_configurations import SipConfigurationService
from calld.service.subscriptions import SubscriptionService
from calld.storage.calls import CallStore
from calld.storage.database import Database
from calld.storage.tokens import TokenStore


@dataclass(slots=True)
class Services:
    """The daemon's parts and the use cases over them (built here, from the parts: no globals)."""

    config: Config
    db: Database
    calls: CallStore
    switch: SwitchPort | None = None
    tokens: TokenStore = field(default_factory=TokenStore)
    # Handlers that make deliveries due (redeliver) wake the delivery worker through it.
    outbox: Outbox = field(default_factory=Outbox)
    live: LiveHub = field(default_factory=LiveHub)
    metrics: Metrics = field(default_factory=Metrics)
    # The election of this instance's PBX leader (None: SQLite, no switch, or [cluster] enabled = false).
    elector: Elector | None = None
    # Another PBX's switch, reached through its leader (None: SQLite, or [cluster] enabled = false).
    remote: Callable[[str], SwitchPort] | None = None
    call_log: CallService = field(init=False)
    control: CallControl = field(init=False)
    provider: ProviderDeliveries = field(init=False)
    provider_events: ProviderEvents = field(init=False)
    clients: ClientService = field(init=False)
    sip_configurations: SipConfigurationService = field(init=False)
    subscriptions: SubscriptionService = field(init=False)
    recordings: RecordingFiles = field(init=False)

    def __post_init__(self) -> None:
        self.control = CallControl(self.db, self.calls, self.switch, self.remote)
        self.provider = ProviderDeliveries(self.db, self.calls)
        self.provider_events = ProviderEvents(self.db, self.calls, self.provider)
        self.clients = ClientService(self.db)
        self.sip_configurations = SipConfigurationService(
            self.db, self.config.sip_probe.timeout_seconds, self.config.egress.policy, lambda: self.config.turn
        )
        self.subscriptions = SubscriptionService(self.db, self.outbox)
        self.recordings = RecordingFiles(
            self.db, self.config.recording_directories, self.config.switch_recording_directory
        )
        self.call_log = CallService(
            self.db, self.calls, self.live, self.switch, self.config.calls.default_region, self.recordings
        )
