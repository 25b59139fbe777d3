"""`kv serve`'s configuration: etcd 3.4.23's member flags, defaults, environment and checks.

Every message asserted here is etcd's own text, checked against the real ``etcd`` binary,
except the ``kv:`` refusals of what kv cannot do before Raft (chapters 3-5).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from kv.cli import FLAGS, serve_flags
from kv.server.config import ServerConfig
from kv.server.flag_values import ConfigError, bind_address

ETCD = shutil.which("etcd")


def refused(message: str) -> pytest.RaisesExc[ConfigError]:
    """Expect a `ConfigError` whose message is exactly ``message``."""
    return pytest.raises(ConfigError, match=f"^{re.escape(message)}$")


# --- defaults ----------------------------------------------------------------------------------


def test_defaults_are_etcd_3_4_defaults() -> None:
    config = ServerConfig()
    assert config.name == "default"
    assert config.data_dir == "default.etcd"
    assert config.listen_client_urls == ("http://localhost:2379",)
    assert config.advertise_client_urls == ("http://localhost:2379",)
    assert config.listen_peer_urls == ("http://localhost:2380",)
    assert config.initial_advertise_peer_urls == ("http://localhost:2380",)
    assert config.initial_cluster == "default=http://localhost:2380"
    assert config.initial_cluster_state == "new"
    assert config.initial_cluster_token == "etcd-cluster"
    assert config.heartbeat_interval == 100
    assert config.election_timeout == 1000
    assert config.max_request_bytes == 1572864
    assert config.log_level == "info"
    assert config.snapshot_count == 100000
    assert config.quota_backend_bytes == 0
    assert (config.backend_batch_interval, config.backend_batch_limit) == (0, 0)  # 100ms, 10000


@pytest.mark.etcd
@pytest.mark.skipif(ETCD is None, reason="needs the real etcd (apt-get install etcd-server)")
def test_flag_defaults_match_etcd_help() -> None:
    assert ETCD is not None
    help_text = subprocess.run([ETCD, "--help"], capture_output=True, text=True).stdout
    for flag in FLAGS:
        if flag.name in ETCD_35_FLAGS | UNLISTED_FLAGS:
            assert flag.name not in help_text, f"{flag.name} is in etcd 3.4's --help after all"
            continue
        assert f"  {flag.name} '{flag.default}'\n" in help_text, flag.name


#: Flags kv takes from etcd 3.5 (absent from 3.4's --help), with 3.5's name and default.
ETCD_35_FLAGS = {"--experimental-snapshot-catchup-entries", "--listen-client-http-urls"}
#: Flags absent from etcd 3.4.23's --help: one it accepts without listing it (chapter 7; the
#: lease checkpoint differential test sees etcd parse it), and kv's own (chapter 7).
UNLISTED_FLAGS = {
    "--experimental-enable-lease-checkpoint-persist",
    "--experimental-lease-checkpoint-interval",
}


# --- derived defaults --------------------------------------------------------------------------


def test_data_dir_defaults_to_the_name_dot_etcd() -> None:
    assert ServerConfig(name="infra1").data_dir == "infra1.etcd"


def test_an_explicit_data_dir_is_kept() -> None:
    assert ServerConfig(name="infra1", data_dir="/var/lib/kv").data_dir == "/var/lib/kv"


def test_initial_cluster_defaults_to_the_name_and_its_advertised_peer_urls() -> None:
    config = ServerConfig(
        name="infra1",
        initial_advertise_peer_urls=("http://127.0.0.1:12380", "http://127.0.0.2:12380"),
    )
    assert config.initial_cluster == "infra1=http://127.0.0.1:12380,infra1=http://127.0.0.2:12380"


def test_an_explicit_initial_cluster_is_kept() -> None:
    config = ServerConfig(
        name="infra1",
        initial_advertise_peer_urls=("http://127.0.0.1:12380",),
        initial_cluster="infra1=http://127.0.0.1:12380",
    )
    assert config.initial_cluster == "infra1=http://127.0.0.1:12380"


def test_the_default_name_does_not_derive_its_initial_cluster() -> None:
    # etcd only rewrites --initial-cluster for a non-default --name, so this is refused.
    with refused(
        "--initial-cluster has default=http://localhost:2380 but missing from "
        "--initial-advertise-peer-urls=http://127.0.0.1:2380 "
        '(resolved urls: "http://127.0.0.1:2380" != "http://localhost:2380")'
    ):
        ServerConfig(initial_advertise_peer_urls=("http://127.0.0.1:2380",))


# --- timing ------------------------------------------------------------------------------------


def test_election_timeout_below_five_heartbeats_is_refused() -> None:
    with refused(
        "--election-timeout[100ms] should be at least as 5 times as --heartbeat-interval[100ms]"
    ):
        ServerConfig(election_timeout=100)


def test_election_timeout_of_exactly_five_heartbeats_is_accepted() -> None:
    assert ServerConfig(heartbeat_interval=200, election_timeout=1000).election_timeout == 1000


def test_a_heartbeat_interval_of_zero_is_refused() -> None:
    with refused("--heartbeat-interval must be >0 (set to 0ms)"):
        ServerConfig(heartbeat_interval=0)


def test_an_election_timeout_above_50_seconds_is_refused() -> None:
    with refused("--election-timeout[60000ms] is too long, and should be set less than 50000ms"):
        ServerConfig(election_timeout=60000)


# --- the member and its cluster ----------------------------------------------------------------


def test_a_name_missing_from_initial_cluster_is_refused() -> None:
    with refused('couldn\'t find local name "x" in the initial cluster configuration'):
        ServerConfig(name="x", initial_cluster="y=http://localhost:2380")


def test_peer_urls_that_differ_from_the_initial_cluster_entry_are_refused() -> None:
    with refused(
        "--initial-cluster has x=http://127.0.0.1:2381 but missing from "
        "--initial-advertise-peer-urls=http://127.0.0.1:2380 "
        '(resolved urls: "http://127.0.0.1:2380" != "http://127.0.0.1:2381")'
    ):
        ServerConfig(
            name="x",
            initial_advertise_peer_urls=("http://127.0.0.1:2380",),
            initial_cluster="x=http://127.0.0.1:2381",
        )


def test_an_advertised_peer_url_missing_from_the_initial_cluster_is_refused() -> None:
    with refused(
        "--initial-advertise-peer-urls has http://127.0.0.1:2381 but missing from "
        "--initial-cluster=x=http://127.0.0.1:2380,x=http://127.0.0.1:2381"
    ):
        ServerConfig(
            name="x",
            initial_advertise_peer_urls=("http://127.0.0.1:2380", "http://127.0.0.1:2381"),
            initial_cluster="x=http://127.0.0.1:2380",
        )


def test_a_multi_member_initial_cluster_is_accepted() -> None:
    config = ServerConfig(
        name="a",
        initial_advertise_peer_urls=("http://127.0.0.1:2380",),
        initial_cluster="a=http://127.0.0.1:2380,b=http://127.0.0.1:2480",
    )
    assert [member.name for member in config.cluster().members] == ["a", "b"]


def test_joining_an_existing_cluster_is_accepted() -> None:
    assert ServerConfig(initial_cluster_state="existing").initial_cluster_state == "existing"


def test_an_unknown_cluster_state_is_refused() -> None:
    with refused('unexpected clusterState "bogus"'):
        ServerConfig(initial_cluster_state="bogus")


def test_an_unknown_log_level_is_refused() -> None:
    with pytest.raises(ConfigError, match=r'^unknown level "verbose"'):
        ServerConfig(log_level="verbose")


# --- listen URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127.0.0.1:2379", "127.0.0.1:2379"),
        ("http://0.0.0.0:2379", "0.0.0.0:2379"),
        ("http://[::1]:2379", "[::1]:2379"),
        ("http://localhost:2379", "localhost:2379"),
    ],
)
def test_a_listen_url_becomes_a_grpc_bind_address(url: str, address: str) -> None:
    assert bind_address(url) == address


def test_an_https_listen_url_is_refused_as_tls_is_not_supported_yet() -> None:
    with pytest.raises(ConfigError, match="TLS is not supported by kv yet"):
        bind_address("https://127.0.0.1:2379")


def test_a_unix_socket_listen_url_is_refused() -> None:
    with pytest.raises(ConfigError, match="unix sockets are not supported by kv"):
        bind_address("unix://localhost:2379")


def test_a_listen_url_must_name_an_ip_not_a_host_name() -> None:
    with refused("expected IP in URL for binding (http://example.com:2379)"):
        bind_address("http://example.com:2379")


def test_a_listen_url_needs_a_port() -> None:
    with refused('URL address does not have the form "host:port": http://127.0.0.1'):
        bind_address("http://127.0.0.1")


def test_a_url_with_an_unknown_scheme_is_refused() -> None:
    with refused("URL scheme must be http, https, unix, or unixs: ftp://127.0.0.1:2379"):
        bind_address("ftp://127.0.0.1:2379")


def test_a_config_with_a_tls_listen_url_is_refused() -> None:
    with pytest.raises(ConfigError, match="TLS is not supported by kv yet"):
        ServerConfig(
            listen_client_urls=("https://127.0.0.1:2379",),
            advertise_client_urls=("https://127.0.0.1:2379",),
        )


# --- environment variables (ETCD_<FLAG>) -------------------------------------------------------


def no_flags() -> dict[str, str | None]:
    return {flag.field: None for flag in FLAGS}


def test_every_flag_has_etcds_environment_variable() -> None:
    envs = {flag.name: flag.env for flag in FLAGS}
    assert envs["--name"] == "ETCD_NAME"
    assert envs["--listen-client-urls"] == "ETCD_LISTEN_CLIENT_URLS"
    assert envs["--initial-advertise-peer-urls"] == "ETCD_INITIAL_ADVERTISE_PEER_URLS"
    assert envs["--max-request-bytes"] == "ETCD_MAX_REQUEST_BYTES"


def test_an_environment_variable_sets_a_flag_that_was_not_given() -> None:
    flags = serve_flags(no_flags(), {"ETCD_NAME": "infra1", "ETCD_ELECTION_TIMEOUT": "2000"})
    assert flags.config.name == "infra1"
    assert flags.config.data_dir == "infra1.etcd"
    assert flags.config.election_timeout == 2000
    assert flags.env_used == ["ETCD_NAME=infra1", "ETCD_ELECTION_TIMEOUT=2000"]


def test_url_environment_variables_are_comma_separated_lists() -> None:
    urls = "http://127.0.0.1:2379,http://127.0.0.1:22379"
    flags = serve_flags(
        no_flags(), {"ETCD_LISTEN_CLIENT_URLS": urls, "ETCD_ADVERTISE_CLIENT_URLS": urls}
    )
    assert flags.config.listen_client_urls == ("http://127.0.0.1:2379", "http://127.0.0.1:22379")


def test_a_flag_also_set_in_the_environment_is_refused_as_etcd_3_4_does() -> None:
    with refused(
        'conflicting environment variable "ETCD_NAME" is shadowed by corresponding '
        "command-line flag (either unset environment variable or disable flag)"
    ):
        serve_flags({**no_flags(), "name": "a"}, {"ETCD_NAME": "b"})


def test_an_empty_environment_variable_is_ignored_and_reported() -> None:
    flags = serve_flags(no_flags(), {"ETCD_NAME": ""})
    assert flags.config.name == "default"
    assert flags.env_unrecognized == ["ETCD_NAME="]


def test_an_unknown_etcd_environment_variable_is_reported() -> None:
    flags = serve_flags(no_flags(), {"ETCD_BOGUS": "1", "HOME": "/root"})
    assert flags.env_unrecognized == ["ETCD_BOGUS=1"]


def test_the_backend_batch_flags_take_a_go_duration_and_a_count() -> None:
    given = {**no_flags(), "backend_batch_interval": "250ms", "backend_batch_limit": "500"}
    config = serve_flags(given, {}).config
    assert (config.backend_batch_interval, config.backend_batch_limit) == (0.25, 500)


def test_a_negative_backend_batch_limit_is_refused() -> None:
    with refused("invalid value -1 for --backend-batch-limit: must not be negative"):
        ServerConfig(backend_batch_limit=-1)


def test_an_environment_variable_that_does_not_parse_is_refused() -> None:
    with refused('invalid value "abc" for ETCD_HEARTBEAT_INTERVAL: parse error'):
        serve_flags(no_flags(), {"ETCD_HEARTBEAT_INTERVAL": "abc"})


def test_listen_client_urls_without_advertise_client_urls_is_refused() -> None:
    with refused("--advertise-client-urls is required when --listen-client-urls is set explicitly"):
        serve_flags({**no_flags(), "listen_client_urls": "http://127.0.0.1:2379"}, {})
