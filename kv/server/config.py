"""A member's configuration: etcd's member flags, defaults and checks (chapter 1).

`ServerConfig` holds what ``kv serve`` was told, under etcd 3.4.23's flag names and defaults,
so a command line written for etcd works for kv. Two defaults are derived, as etcd derives
them (etcd: ``etcdmain/config.go``, ``embed/config.go``):

* ``--data-dir`` defaults to ``${name}.etcd``;
* ``--initial-cluster`` defaults to ``default=http://localhost:2380``, and when ``--name`` is
  not ``default`` but ``--initial-cluster`` is still that default, etcd rewrites it to
  ``name=<each --initial-advertise-peer-urls>``. With ``--name default`` it does not, which is
  why ``etcd --initial-advertise-peer-urls http://127.0.0.1:2380`` alone is refused.

A `ServerConfig` checks itself when it is made: an invalid one cannot exist. The messages are
etcd's word for word where etcd has one, so a search for the text finds etcd's documentation;
where kv refuses something etcd accepts (TLS, unix sockets), the message starts with ``kv:``.
How one flag's text reads as a value (Go durations, URLs and the addresses they bind) is
`kv.server.flag_values`, with `ConfigError`, which every refusal raises.
"""

from __future__ import annotations

from dataclasses import dataclass

from kv.membership import Cluster, InitialClusterError, parse_initial_cluster
from kv.server.flag_values import (
    ConfigError,
    bind_address,
    check_url,
    go_quote,
    parse_go_duration,
)

DEFAULT_NAME = "default"
DEFAULT_CLIENT_URL = "http://localhost:2379"
DEFAULT_PEER_URL = "http://localhost:2380"
DEFAULT_INITIAL_CLUSTER = f"{DEFAULT_NAME}={DEFAULT_PEER_URL}"
# etcd: embed/config.go maxElectionMs.
MAX_ELECTION_MS = 50000
# etcd 3.4's --log-level accepts exactly these ("Only supports debug, info, warn, error,
# panic, or fatal."); an unknown level makes etcd panic, kv refuses it with a message.
LOG_LEVELS = ("debug", "info", "warn", "error", "panic", "fatal")
CLUSTER_STATES = ("new", "existing")
#: etcd's --max-txn-ops: the most compares, or operations in one branch, of a txn (chapter 6).
DEFAULT_MAX_TXN_OPS = 128


#: ``--auto-compaction-mode``'s values (chapter 10, `kv.server.auto_compaction`).
PERIODIC = "periodic"
REVISION = "revision"
COMPACTION_MODES = (PERIODIC, REVISION)
HOUR_NS = 3_600_000_000_000


def parse_retention(mode: str, text: str) -> int:
    """``--auto-compaction-retention`` for ``mode``: nanoseconds (periodic) or revisions.

    etcd's rule (``embed/etcd.go`` ``parseCompactionRetention``): a non-negative integer is
    hours in periodic mode and revisions in revision mode; anything else is a Go duration, in
    either mode (so ``revision`` with ``5m`` keeps 300,000,000,000 revisions, as in etcd).

    Raises:
        ConfigError: an unknown mode or a malformed retention, with etcd's messages.
    """
    if mode not in COMPACTION_MODES:
        raise ConfigError(f"unknown auto-compaction-mode {go_quote(mode)}")
    if text.isascii() and text.isdigit():
        return int(text) * HOUR_NS if mode == PERIODIC else int(text)
    try:
        return parse_go_duration(text)
    except ValueError as error:
        raise ConfigError(f"error parsing CompactionRetention: {error}") from None


# --8<-- [start:config]
@dataclass(frozen=True, slots=True)
class ServerConfig:
    """etcd's member flags, with etcd 3.4.23's defaults. Validated when constructed.

    URL flags hold one entry per URL (etcd's flags take a comma-separated list). The defaults
    derived from ``name`` are computed once, at construction: `dataclasses.replace` with a new
    ``name`` keeps the old derived values, so pass them again if they matter.
    """

    name: str = DEFAULT_NAME
    data_dir: str = ""  # "" = f"{name}.etcd", as etcd
    listen_client_urls: tuple[str, ...] = (DEFAULT_CLIENT_URL,)
    advertise_client_urls: tuple[str, ...] = (DEFAULT_CLIENT_URL,)
    listen_peer_urls: tuple[str, ...] = (DEFAULT_PEER_URL,)
    initial_advertise_peer_urls: tuple[str, ...] = (DEFAULT_PEER_URL,)
    initial_cluster: str = DEFAULT_INITIAL_CLUSTER
    initial_cluster_state: str = "new"
    initial_cluster_token: str = "etcd-cluster"
    heartbeat_interval: int = 100  # milliseconds
    election_timeout: int = 1000  # milliseconds
    max_request_bytes: int = 1572864  # 1.5 MiB
    max_txn_ops: int = DEFAULT_MAX_TXN_OPS  # chapter 6
    log_level: str = "info"
    # Chapter 2: durability and space.
    snapshot_count: int = 100000
    max_snapshots: int = 5  # 0 = keep every snapshot file
    max_wals: int = 5  # 0 = keep every WAL segment
    quota_backend_bytes: int = 0  # 0 = etcd's default quota, 2 GiB
    # The backend's batch is committed this often (seconds), or once it holds this many
    # writes (kv.server.replica.batching); 0 = etcd's defaults, 100ms and 10000.
    backend_batch_interval: float = 0.0
    backend_batch_limit: int = 0
    # Chapter 3: PreVote (thesis §9.6); off by default in etcd 3.4, on in 3.5.
    pre_vote: bool = False
    # Chapter 5: entries a leader keeps behind a snapshot for slow followers (etcd 3.5's flag).
    experimental_snapshot_catchup_entries: int = 5000
    # Chapter 8: how often a watch that asked for progress notifications gets one (seconds).
    experimental_watch_progress_notify_interval: float = 600.0
    # Chapter 7: lease checkpoints (kv.lease.checkpoint); persisted with the second flag only.
    experimental_enable_lease_checkpoint: bool = False
    experimental_enable_lease_checkpoint_persist: bool = False
    # kv's own: seconds between checkpoints (etcd 3.4: 5 minutes, set only by its tests).
    experimental_lease_checkpoint_interval: float = 300.0
    # Chapter 10: auto-compaction ("0" = off; hours or a Go duration, or revisions).
    auto_compaction_mode: str = PERIODIC
    auto_compaction_retention: str = "0"
    # Chapter 10: more URLs serving /metrics and /health (the client URLs serve them too).
    listen_metrics_urls: tuple[str, ...] = ()
    # Chapter 10: client HTTP (/metrics, /health, /version) on URLs of its own, leaving the
    # client URLs to gRPC (etcd 3.5.8's flag; in 3.4 both share the client URLs).
    listen_client_http_urls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # object.__setattr__: the dataclass is frozen, and these are still being initialised.
        if not self.data_dir:
            object.__setattr__(self, "data_dir", f"{self.name}.etcd")
        if self.name != DEFAULT_NAME and self.initial_cluster == DEFAULT_INITIAL_CLUSTER:
            # etcd: embed.Config.UpdateDefaultClusterFromName / InitialClusterFromName.
            derived = ",".join(f"{self.name}={url}" for url in self.initial_advertise_peer_urls)
            object.__setattr__(self, "initial_cluster", derived)
        validate(self)

    def cluster(self) -> Cluster:
        """The cluster ``--initial-cluster`` and ``--initial-cluster-token`` describe."""
        return Cluster.from_initial_cluster(self.initial_cluster, self.initial_cluster_token)

    # --8<-- [end:config]


def validate(config: ServerConfig) -> None:
    """Check ``config`` as etcd checks its flags, then refuse what kv cannot do yet.

    Raises:
        ConfigError: with etcd's message, or a ``kv:`` message for a kv limitation.
    """
    _check_flags(config)
    _check_limits(config)
    parse_retention(config.auto_compaction_mode, config.auto_compaction_retention)
    _check_bootstrap(config)


def _check_flags(config: ServerConfig) -> None:
    """etcd: embed/config.go ``Config.Validate`` (URLs, timing) and the flag parsers."""
    # kv needs somewhere to listen, and a peer URL to derive its member id from.
    if not config.listen_client_urls:
        raise ConfigError("--listen-client-urls needs at least one URL")
    if not config.initial_advertise_peer_urls:
        raise ConfigError("--initial-advertise-peer-urls needs at least one URL")
    for urls in (
        config.listen_client_urls,
        config.advertise_client_urls,
        config.listen_peer_urls,
        config.initial_advertise_peer_urls,
    ):
        for url in urls:
            check_url(url)
    for url in (
        *config.listen_client_urls,
        *config.listen_client_http_urls,
        *config.listen_metrics_urls,
    ):
        bind_address(url)  # kv binds these itself, so refuse what it cannot bind now
    if config.initial_cluster_state not in CLUSTER_STATES:
        raise ConfigError(f"unexpected clusterState {go_quote(config.initial_cluster_state)}")
    if config.heartbeat_interval <= 0:
        raise ConfigError(f"--heartbeat-interval must be >0 (set to {config.heartbeat_interval}ms)")
    if config.election_timeout <= 0:
        raise ConfigError(f"--election-timeout must be >0 (set to {config.election_timeout}ms)")
    # Raft needs several heartbeats per election timeout, or followers start elections while
    # the leader is alive (etcd's tuning guide); etcd enforces a factor of 5.
    if 5 * config.heartbeat_interval > config.election_timeout:
        raise ConfigError(
            f"--election-timeout[{config.election_timeout}ms] should be at least as 5 times "
            f"as --heartbeat-interval[{config.heartbeat_interval}ms]"
        )
    if config.election_timeout > MAX_ELECTION_MS:
        raise ConfigError(
            f"--election-timeout[{config.election_timeout}ms] is too long, and should be set "
            f"less than {MAX_ELECTION_MS}ms"
        )
    # etcd 3.4.20+: embed/config.go Config.Validate.
    if config.experimental_enable_lease_checkpoint_persist and not (
        config.experimental_enable_lease_checkpoint
    ):
        raise ConfigError(
            "setting experimental-enable-lease-checkpoint-persist requires "
            "experimental-enable-lease-checkpoint"
        )
    if config.experimental_lease_checkpoint_interval <= 0:
        raise ConfigError(
            "kv: --experimental-lease-checkpoint-interval must be >0 "
            f"(set to {config.experimental_lease_checkpoint_interval}s)"
        )
    if config.log_level not in LOG_LEVELS:
        raise ConfigError(
            f"unknown level {go_quote(config.log_level)}: --log-level supports "
            "debug, info, warn, error, panic, or fatal"
        )


def _check_limits(config: ServerConfig) -> None:
    # etcd's flags are unsigned: a negative value fails to parse there. (Its
    # --backend-batch-interval is a duration, but a negative one would spin its commit timer.)
    for flag, value in (
        ("--max-request-bytes", config.max_request_bytes),
        ("--max-txn-ops", config.max_txn_ops),
        ("--snapshot-count", config.snapshot_count),
        ("--max-snapshots", config.max_snapshots),
        ("--max-wals", config.max_wals),
        ("--quota-backend-bytes", config.quota_backend_bytes),
        ("--backend-batch-interval", config.backend_batch_interval),
        ("--backend-batch-limit", config.backend_batch_limit),
        ("--experimental-snapshot-catchup-entries", config.experimental_snapshot_catchup_entries),
    ):
        if value < 0:
            raise ConfigError(f"invalid value {value} for {flag}: must not be negative")


def _check_bootstrap(config: ServerConfig) -> None:
    check_bootstrap(config.name, config.initial_cluster, config.initial_advertise_peer_urls)


def check_bootstrap(
    name: str, initial_cluster: str, initial_advertise_peer_urls: tuple[str, ...]
) -> None:
    """etcd: etcdserver/config.go ``VerifyBootstrap`` -- this member is in --initial-cluster.

    ``kv serve`` checks its flags with it, and so does ``kv snapshot restore`` (as etcdctl's
    restore does), which takes the same three flags.

    Raises:
        ConfigError: with etcd's message.
    """
    try:
        peers = parse_initial_cluster(initial_cluster)
    except InitialClusterError as error:
        raise ConfigError(f"error setting up initial cluster: {error}") from None
    for urls in peers.values():
        for url in urls:
            try:
                check_url(url)
            except ConfigError as error:
                raise ConfigError(f"error setting up initial cluster: {error}") from None
    if name not in peers:
        raise ConfigError(
            f"couldn't find local name {go_quote(name)} in the initial cluster configuration"
        )
    _check_advertise_matches_cluster(name, peers[name], initial_advertise_peer_urls)


def _check_advertise_matches_cluster(
    name: str, cluster_urls: tuple[str, ...], initial_advertise_peer_urls: tuple[str, ...]
) -> None:
    """etcd: etcdserver/config.go ``advertiseMatchesCluster``, without resolving DNS names.

    The member's id is derived from its peer URLs, so the URLs it advertises and the ones the
    other members know it by must be the same, or the ids would disagree.
    """
    advertised = sorted(initial_advertise_peer_urls)
    listed = sorted(cluster_urls)
    if advertised == listed:
        return
    if len(advertised) != len(listed):
        detail = f"len({_go_quote_list(advertised)}) != len({_go_quote_list(listed)})"
    else:
        a, b = next((a, b) for a, b in zip(advertised, listed, strict=True) if a != b)
        detail = f"resolved urls: {go_quote(a)} != {go_quote(b)}"
    missing = [url for url in listed if url not in advertised]
    if missing:
        raise ConfigError(
            f"--initial-cluster has {','.join(f'{name}={url}' for url in missing)} but missing "
            f"from --initial-advertise-peer-urls={','.join(advertised)} ({detail})"
        )
    extra = [url for url in advertised if url not in listed]
    raise ConfigError(
        f"--initial-advertise-peer-urls has {','.join(extra)} but missing from "
        f"--initial-cluster={','.join(f'{name}={url}' for url in advertised)}"
    )


def _go_quote_list(items: list[str]) -> str:
    """Go's ``%q`` of a ``[]string``: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(item) for item in items) + "]"
