"""Attach mode's pure parts, without Textual or a server: the poll model, the backoff, paging
(and the poller, once, against a port nobody listens on).

A member's row comes from its own Maintenance.Status; a member that fails is DOWN and asked
again on an exponential, capped schedule; the key browser pages with ``limit`` and the key
after the last one shown.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kv.api.etcdserverpb import rpc_pb2
from kv.client import prefix_end
from kv.cluster.layout import ClusterError, Layout
from kv.cluster.state import ClusterState, save
from tests.compat.servers import free_ports
from tui.attach.browse import Pager, PageRequest, parse_bytes, preview
from tui.attach.local import belongs, find_cluster
from tui.attach.model import (
    Backoff,
    MemberRow,
    Members,
    Role,
    Sample,
    Tracker,
    changes,
    human_bytes,
    normalise_endpoint,
    sparkline,
)
from tui.attach.poller import Poller

N1, N2 = 0x1111, 0x2222


def status(
    member: int = N1, leader: int = N1, term: int = 3, index: int = 10, learner: bool = False
) -> rpc_pb2.StatusResponse:
    answer = rpc_pb2.StatusResponse(
        version="3.4.0",
        dbSize=24576,
        dbSizeInUse=20480,
        leader=leader,
        raftIndex=index,
        raftTerm=term,
        raftAppliedIndex=index - 1,
        isLearner=learner,
    )
    answer.header.member_id = member
    return answer


def member_list(*members: tuple[int, str, str]) -> rpc_pb2.MemberListResponse:
    listed = rpc_pb2.MemberListResponse()
    for member_id, name, url in members:
        listed.members.add(ID=member_id, name=name, clientURLs=[url] if url else [])
    return listed


# -- roles, as words ---------------------------------------------------------------------------


def test_a_member_that_names_itself_leader_is_the_leader() -> None:
    assert Sample.from_status(status(member=N1, leader=N1)).role is Role.LEADER


def test_a_member_that_names_another_leader_is_a_follower() -> None:
    assert Sample.from_status(status(member=N2, leader=N1)).role is Role.FOLLOWER


def test_a_learner_is_a_learner_whoever_leads() -> None:
    assert Sample.from_status(status(member=N2, leader=N1, learner=True)).role is Role.LEARNER


def test_a_member_that_knows_no_leader_says_so() -> None:
    assert Sample.from_status(status(leader=0)).role is Role.NO_LEADER


def test_roles_are_words_that_need_no_colour() -> None:
    assert [role.value for role in Role] == [
        "connecting",
        "LEADER",
        "follower",
        "learner",
        "no leader",
        "DOWN",
    ]


# -- a status becomes a row ----------------------------------------------------------------------


def test_a_row_holds_every_number_of_the_status() -> None:
    tracker = Tracker("127.0.0.1:1")
    tracker.answered(Sample.from_status(status(term=4, index=12)), now=10.0)
    row = tracker.row(now=10.25)
    assert row.role is Role.LEADER
    assert row.sample is not None
    sample = row.sample
    assert (sample.member_id, sample.term, sample.raft_index, sample.applied_index) == (
        N1,
        4,
        12,
        11,
    )
    assert (sample.db_size, sample.db_size_in_use, sample.version) == (24576, 20480, "3.4.0")
    assert (row.seen_ago, row.error, row.retry_in) == (0.25, None, None)


def test_a_row_that_never_answered_is_connecting() -> None:
    row = Tracker("127.0.0.1:1").row(now=0.0)
    assert (row.role, row.sample, row.seen_ago, row.name) == (
        Role.CONNECTING,
        None,
        None,
        "127.0.0.1:1",
    )


def test_each_answer_adds_term_index_and_db_size_to_the_history() -> None:
    tracker = Tracker("e")
    for term, index in ((1, 5), (2, 7), (2, 9)):
        tracker.answered(Sample.from_status(status(term=term, index=index)), now=float(index))
    row = tracker.row(now=9.0)
    assert (row.terms, row.indexes, row.db_sizes) == ((1, 2, 2), (5, 7, 9), (24576,) * 3)


# -- down, backoff, back ---------------------------------------------------------------------------


def test_the_backoff_doubles_from_half_a_second_up_to_its_cap() -> None:
    backoff = Backoff(initial=0.5, factor=2.0, cap=8.0)
    assert [backoff.delay(failures) for failures in range(8)] == [0, 0.5, 1, 2, 4, 8, 8, 8]


def test_a_member_that_fails_is_down_keeps_its_last_numbers_and_says_when_it_is_retried() -> None:
    tracker = Tracker("e", Backoff(initial=0.5, factor=2.0, cap=8.0))
    tracker.answered(Sample.from_status(status(term=3)), now=0.0)
    tracker.failed("UNAVAILABLE: connection refused", now=1.0)
    tracker.failed("UNAVAILABLE: connection refused", now=1.5)
    row = tracker.row(now=2.0)
    assert row.role is Role.DOWN
    assert row.error == "UNAVAILABLE: connection refused"
    assert row.sample is not None and row.sample.term == 3
    assert row.seen_ago == 2.0
    assert row.retry_in == 0.5  # second failure at 1.5: asked again at 1.5 + 1


def test_a_down_member_is_not_asked_again_before_its_backoff_has_passed() -> None:
    tracker = Tracker("e", Backoff(initial=1.0, factor=2.0, cap=8.0))
    tracker.failed("timeout", now=10.0)
    assert not tracker.due(10.9)
    assert tracker.due(11.0)


def test_a_member_that_answers_again_is_up_and_its_backoff_starts_over() -> None:
    tracker = Tracker("e", Backoff(initial=1.0, factor=2.0, cap=8.0))
    for now in (0.0, 1.0, 3.0):
        tracker.failed("timeout", now=now)
    tracker.answered(Sample.from_status(status(member=N2, leader=N1)), now=7.0)
    tracker.failed("timeout", now=8.0)
    assert tracker.row(now=8.0).retry_in == 1.0
    tracker.answered(Sample.from_status(status(member=N2, leader=N1)), now=9.0)
    assert tracker.row(now=9.0).role is Role.FOLLOWER


# -- names and discovery from MemberList ---------------------------------------------------------


def test_member_list_names_the_endpoints_by_their_client_urls() -> None:
    members = Members(["http://127.0.0.1:1", "127.0.0.1:2"])
    members.learn_members(
        member_list((N1, "n1", "http://127.0.0.1:1"), (N2, "n2", "http://127.0.0.1:2"))
    )
    assert [row.name for row in members.rows(now=0.0)] == ["n1", "n2"]


def test_member_list_adds_the_members_not_given_as_endpoints() -> None:
    members = Members(["127.0.0.1:1"])
    added = members.learn_members(
        member_list((N1, "n1", "http://127.0.0.1:1"), (N2, "n2", "http://127.0.0.1:2"))
    )
    assert added == ["127.0.0.1:2"]
    assert [row.endpoint for row in members.rows(now=0.0)] == ["127.0.0.1:1", "127.0.0.1:2"]


def test_a_member_added_but_not_started_is_not_polled() -> None:
    members = Members(["127.0.0.1:1"])
    assert members.learn_members(member_list((N1, "n1", "http://127.0.0.1:1"), (N2, "", ""))) == []


def test_endpoints_with_and_without_a_scheme_are_the_same_endpoint() -> None:
    assert normalise_endpoint("http://127.0.0.1:2379/") == "127.0.0.1:2379"
    assert len(Members(["http://127.0.0.1:1", "127.0.0.1:1"]).trackers) == 1


# -- what the events pane says -------------------------------------------------------------------


def rows_of(*samples: tuple[str, rpc_pb2.StatusResponse | None]) -> list[MemberRow]:
    members = Members([name for name, _ in samples])
    for name, answer in samples:
        tracker = members.trackers[name]
        tracker.name = name
        if answer is None:
            tracker.failed("UNAVAILABLE: connection refused", now=0.0)
        else:
            tracker.answered(Sample.from_status(answer), now=0.0)
    return members.rows(now=0.0)


def test_a_member_going_down_is_told_once() -> None:
    before = rows_of(("n1", status(N1, N1)), ("n2", status(N2, N1)))
    after = rows_of(("n1", status(N1, N1)), ("n2", None))
    assert changes(before, after) == [
        "n2 is DOWN (UNAVAILABLE: connection refused); retrying with backoff"
    ]
    assert changes(after, after) == []


def test_a_member_coming_back_and_a_new_leader_are_told() -> None:
    before = rows_of(("n1", None), ("n2", status(N2, 0, term=3)))
    after = rows_of(("n1", status(N1, N2, term=4)), ("n2", status(N2, N2, term=4)))
    assert changes(before, after) == ["n1 answers: follower, term 4", "n2 leads, term 4"]


# -- sparklines and sizes ---------------------------------------------------------------------


def test_a_sparkline_scales_its_window_from_lowest_to_highest() -> None:
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8], 8) == "▁▂▃▄▅▆▇█"


def test_a_flat_series_is_a_flat_sparkline_of_the_last_values() -> None:
    assert sparkline([9, 3, 3, 3], 3) == "▁▁▁"


def test_sizes_are_in_binary_units() -> None:
    assert [human_bytes(n) for n in (512, 24576, 3 * 1024 * 1024 // 2)] == [
        "512 B",
        "24 KiB",
        "1.5 MiB",
    ]


# -- paging -----------------------------------------------------------------------------------


def test_the_first_page_of_a_prefix_is_the_prefix_range_with_a_limit() -> None:
    assert Pager(b"app/", page_size=10).request() == PageRequest(b"app/", prefix_end(b"app/"), 10)


def test_the_empty_prefix_pages_through_every_key() -> None:
    assert Pager(page_size=10).request() == PageRequest(b"\0", b"\0", 10)


def test_the_next_page_starts_just_after_the_last_key_shown() -> None:
    pager = Pager(b"app/", page_size=2)
    assert pager.next(b"app/b").key == b"app/b\0"
    assert pager.page_number == 2


def test_the_previous_page_starts_where_it_started_before() -> None:
    pager = Pager(b"", page_size=2)
    pager.next(b"b")
    pager.next(b"d")
    assert pager.previous() == PageRequest(b"b\0", b"\0", 2)
    assert pager.previous() == PageRequest(b"\0", b"\0", 2)
    assert pager.previous() is None


def test_a_preview_shows_text_as_itself_and_escapes_everything_else() -> None:
    assert preview("välue".encode()) == "välue"
    assert preview(b"a\nb\x00\xff\\") == "a\\nb\\x00\\xff\\\\"


def test_a_long_preview_is_cut_with_an_ellipsis() -> None:
    assert preview(b"x" * 50, width=10) == "x" * 9 + "…"


@pytest.mark.parametrize("data", [b"plain", "clé".encode(), b"a\nb\x00\xff\\z"])
def test_what_a_preview_shows_reads_back_as_the_same_bytes(data: bytes) -> None:
    assert parse_bytes(preview(data, width=1000)) == data


# -- a kv cluster behind the endpoints -------------------------------------------------------


def layout_in(tmp_path: Path) -> Layout:
    layout = Layout(tmp_path / "kv-cluster", size=3, base_port=21000)
    layout.root.mkdir()
    save(ClusterState(layout))
    return layout


def test_endpoints_of_the_clusters_members_belong_to_it(tmp_path: Path) -> None:
    layout = layout_in(tmp_path)
    assert belongs(["http://localhost:21000", "127.0.0.1:21010"], layout)
    assert not belongs(["127.0.0.1:21000", "127.0.0.1:2379"], layout)


def test_the_cluster_in_the_directory_given_is_found(tmp_path: Path) -> None:
    layout = layout_in(tmp_path)
    found = find_cluster(layout.endpoints.split(","), layout.root)
    assert found is not None and found.names == ["n1", "n2", "n3"]


def test_a_cluster_dir_the_endpoints_are_not_members_of_is_refused(tmp_path: Path) -> None:
    layout = layout_in(tmp_path)
    with pytest.raises(ClusterError, match="are not the members"):
        find_cluster(["127.0.0.1:2379"], layout.root)


def test_the_default_kv_cluster_dir_is_used_only_when_the_endpoints_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = layout_in(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert find_cluster(layout.endpoints.split(","), None) is not None
    assert find_cluster(["127.0.0.1:2379"], None) is None


# -- the poller against a port nobody listens on (I/O, but no Textual) ------------------------


async def test_a_poll_of_a_closed_port_marks_it_down_and_waits_for_its_backoff() -> None:
    (port,) = free_ports(1)
    now = [100.0]
    poller = Poller(
        [f"127.0.0.1:{port}"], timeout=0.5, backoff=Backoff(1.0, 2.0, 8.0), clock=lambda: now[0]
    )
    try:
        (row,) = await poller.poll()
        assert (row.role, row.retry_in) == (Role.DOWN, 1.0)
        assert row.error is not None and row.error.startswith("UNAVAILABLE")
        now[0] = 100.5
        (row,) = await poller.poll()  # not due: not asked, so still one failure
        assert row.retry_in == 0.5
        now[0] = 101.0
        (row,) = await poller.poll()  # due: asked, failed again, the pause doubles
        assert row.retry_in == 2.0
    finally:
        await poller.close()
