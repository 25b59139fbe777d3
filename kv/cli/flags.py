"""``kv serve``'s flags: etcd 3.4's member flags, with etcd's names, defaults and environment
variables (chapter 1; each flag's help names the chapter that gives it meaning).

A command line or a systemd unit written for etcd 3.4 should start kv unchanged, so the flags
have etcd's names (``--listen-client-urls``, also as ``--listen-client-urls=URL``), etcd's
defaults (see `kv.server.config`), and etcd's environment variables: every flag ``--some-flag``
can also be given as ``ETCD_SOME_FLAG`` (etcd: ``pkg/flags/flag.go`` ``FlagToEnv``).
`kv.cli.environment` combines the two; `kv.cli.flags_table` renders `FLAGS` as chapter 10's
table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kv.server.config import CLUSTER_STATES, LOG_LEVELS
from kv.server.flag_values import parse_duration, split_urls

ENV_PREFIX = "ETCD"


def parse_bool(text: str) -> bool:
    """A Go bool flag's value (strconv.ParseBool)."""
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise ValueError(text)


# --8<-- [start:flags]
@dataclass(frozen=True, slots=True)
class Flag:
    """One of etcd's member flags, as ``kv serve`` accepts it."""

    name: str  # "--listen-client-urls"
    parse: Callable[[str], object]  # text -> the ServerConfig field's value
    help: str
    default: str  # as ``etcd --help`` shows it
    choices: tuple[str, ...] | None = None
    #: A Go bool flag: ``--pre-vote`` alone means true; ``--pre-vote=false`` is allowed.
    is_bool: bool = False

    @property
    def field(self) -> str:
        """The `ServerConfig` field: ``--listen-client-urls`` -> ``listen_client_urls``."""
        return self.name.removeprefix("--").replace("-", "_")

    @property
    def env(self) -> str:
        """etcd's environment variable: ``--listen-client-urls`` -> ``ETCD_LISTEN_CLIENT_URLS``."""
        return f"{ENV_PREFIX}_{self.field.upper()}"


FLAGS = (
    Flag("--name", str, "Human-readable name for this member.", "default"),
    Flag("--data-dir", str, "Path to the data directory.", "${name}.etcd"),
    Flag(
        "--listen-client-urls",
        split_urls,
        "List of URLs to listen on for client traffic.",
        "http://localhost:2379",
    ),
    Flag(
        "--advertise-client-urls",
        split_urls,
        "List of this member's client URLs to advertise to the public.",
        "http://localhost:2379",
    ),
    Flag(
        "--listen-peer-urls",
        split_urls,
        "List of URLs to listen on for peer traffic (chapter 4).",
        "http://localhost:2380",
    ),
    Flag(
        "--initial-advertise-peer-urls",
        split_urls,
        "List of this member's peer URLs to advertise to the rest of the cluster.",
        "http://localhost:2380",
    ),
    Flag(
        "--initial-cluster",
        str,
        "Initial cluster configuration for bootstrapping.",
        "default=http://localhost:2380",
    ),
    Flag(
        "--initial-cluster-state",
        str,
        "Initial cluster state ('new' or 'existing').",
        "new",
        CLUSTER_STATES,
    ),
    Flag(
        "--initial-cluster-token",
        str,
        "Initial cluster token for the etcd cluster during bootstrap.",
        "etcd-cluster",
    ),
    Flag("--heartbeat-interval", int, "Time (in milliseconds) of a heartbeat interval.", "100"),
    Flag("--election-timeout", int, "Time (in milliseconds) for an election to timeout.", "1000"),
    Flag(
        "--max-request-bytes",
        int,
        "Maximum client request size in bytes the server will accept.",
        "1572864",
    ),
    Flag(
        "--max-txn-ops",
        int,
        "Maximum number of operations permitted in a transaction (chapter 6).",
        "128",
    ),
    Flag(
        "--log-level",
        str,
        "Configures log level. Only supports debug, info, warn, error, panic, or fatal.",
        "info",
        LOG_LEVELS,
    ),
    Flag(
        "--snapshot-count",
        int,
        "Number of committed transactions to trigger a snapshot to disk (chapter 2).",
        "100000",
    ),
    Flag(
        "--max-snapshots",
        int,
        "Maximum number of snapshot files to retain (0 is unlimited) (chapter 2).",
        "5",
    ),
    Flag(
        "--max-wals",
        int,
        "Maximum number of wal files to retain (0 is unlimited) (chapter 2).",
        "5",
    ),
    Flag(
        "--quota-backend-bytes",
        int,
        "Raise alarms when backend size exceeds the given quota (chapter 2; 0 = 2 GiB).",
        "0",
    ),
    Flag(
        "--backend-batch-interval",
        parse_duration,
        "BackendBatchInterval is the maximum time before commit the backend transaction "
        "(chapter 2; 0 = 100ms).",
        "",
    ),
    Flag(
        "--backend-batch-limit",
        int,
        "BackendBatchLimit is the maximum operations before commit the backend transaction "
        "(chapter 2; 0 = 10000).",
        "0",
    ),
    Flag(
        "--pre-vote",
        parse_bool,
        "Enable to run an additional Raft election phase (chapter 3).",
        "false",
        is_bool=True,
    ),
    Flag(
        "--experimental-snapshot-catchup-entries",
        int,
        "Number of entries for a slow follower to catch-up after compacting the raft storage "
        "entries (chapter 5; etcd 3.5's flag).",
        "5000",
    ),
    Flag(
        "--auto-compaction-retention",
        str,
        "Auto compaction retention length. 0 means disable auto compaction (chapter 10).",
        "0",
    ),
    Flag(
        "--auto-compaction-mode",
        str,
        "Interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for "
        "duration based retention, defaulting to hours if no time unit is provided (e.g. "
        "'5m'). 'revision' for revision number based retention (chapter 10).",
        "periodic",
    ),
    Flag(
        "--listen-client-http-urls",
        split_urls,
        "List of URLs to listen on for http only client traffic. Enabling this flag removes "
        "http services from --listen-client-urls (chapter 10; etcd 3.5's flag).",
        "",
    ),
    Flag(
        "--listen-metrics-urls",
        split_urls,
        "List of URLs to listen on for the metrics and health endpoints (chapter 10).",
        "",
    ),
    Flag(
        "--experimental-watch-progress-notify-interval",
        parse_duration,
        "Duration of periodical watch progress notification (chapter 8).",
        "10m",
    ),
    Flag(
        "--experimental-enable-lease-checkpoint",
        parse_bool,
        "Enable the leader to send regular checkpoints to other members to prevent reset of "
        "remaining TTL on leader change (chapter 7).",
        "false",
        is_bool=True,
    ),
    Flag(
        "--experimental-enable-lease-checkpoint-persist",
        parse_bool,
        "Enable persisting remainingTTL to prevent indefinite auto-renewal of long lived "
        "leases (chapter 7; etcd 3.4.20+, not in its --help).",
        "false",
        is_bool=True,
    ),
    Flag(
        "--experimental-lease-checkpoint-interval",
        parse_duration,
        "kv's own: time between lease checkpoints (chapter 7; etcd 3.4 fixes it at 5m).",
        "5m",
    ),
)
# --8<-- [end:flags]
