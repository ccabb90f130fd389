"""Every error path of the API: the Linux errno and a message naming what was wrong."""

from __future__ import annotations

import pytest
from kernel_helpers import PAGE, THP

from clustersim.kernel import MADV, KernelError, Node


def raises(errno: str, *words: str):
    """Context manager: a KernelError with ``errno`` whose message contains every word."""
    class _Check:
        def __enter__(self):
            self.ctx = pytest.raises(KernelError)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self.ctx.__exit__(*exc)
            err = self.info.value
            assert err.errno == errno, err
            for w in words:
                assert w in err.message, (w, err.message)
            assert str(err).startswith(f"{errno}: ")
            return handled
    return _Check()


@pytest.fixture
def task():
    node = Node(memory="128M", profile="linux-4.12")
    p = node.spawn()
    r = p.mmap(THP)
    p.touch(r)
    yield node, p, r
    node.check()


def test_unknown_advice_is_einval(task):
    _, p, r = task
    with raises("EINVAL", "99", "not a madvise advice"):
        p.madvise(r, 0, PAGE, 99)


@pytest.mark.parametrize("advice", [MADV.COLLAPSE, MADV.PAGEOUT, MADV.COLD])
def test_advice_the_profile_lacks_is_einval(task, advice):
    _, p, r = task
    with raises("EINVAL", f"MADV_{advice.name}", "linux-4.12"):
        p.madvise(r, 0, PAGE, advice)


def test_proposal_advice_without_the_proposal_is_einval_and_names_it(task):
    _, p, r = task
    with raises("EINVAL", "MADV_SPLITTABLE", "madv_splittable"):
        p.madvise(r, 0, PAGE, MADV.SPLITTABLE)
    with raises("EINVAL", "MADV_FREE_UNDO", "madv_free_undo"):
        p.madvise(r, 0, PAGE, MADV.FREE_UNDO)


def test_unaligned_offset_is_einval(task):
    _, p, r = task
    with raises("EINVAL", "offset 100", "aligned"):
        p.madvise(r, 100, PAGE, MADV.DONTNEED)


@pytest.mark.parametrize(("offset", "length"), [(THP, PAGE), (0, THP + PAGE), (THP - PAGE, 2 * PAGE)])
def test_a_range_outside_the_mapping_is_enomem(task, offset, length):
    _, p, r = task
    with raises("ENOMEM", "outside", str(THP)):
        p.madvise(r, offset, length, MADV.DONTNEED)
    assert p.read(r) == 1.0   # nothing was zapped


@pytest.mark.parametrize("call", ["madvise", "touch", "read"])
def test_a_negative_length_or_offset_is_einval(task, call):
    _, p, r = task
    with raises("EINVAL", "-4096"):
        if call == "madvise":
            p.madvise(r, 0, -PAGE, MADV.DONTNEED)
        else:
            getattr(p, call)(r, -PAGE, PAGE)


def test_mismatched_range_arrays_are_einval(task):
    _, p, r = task
    with raises("EINVAL", "2 offsets but 1 lengths"):
        p.madvise_many(r, [0, PAGE], [PAGE], MADV.DONTNEED)


def test_zero_length_mmap_is_einval(task):
    _, p, _ = task
    with raises("EINVAL", "mmap length"):
        p.mmap(0)


def test_a_region_of_another_task_is_einval(task):
    node, p, r = task
    q = node.spawn()
    with raises("EINVAL", "not a live mapping"):
        q.touch(r)
    p.munmap(r)
    with raises("EINVAL", "not a live mapping"):
        p.madvise(r, 0, PAGE, MADV.DONTNEED)


@pytest.mark.parametrize("call", ["touch", "madvise", "mmap", "read_file", "munmap"])
def test_any_call_after_exit_is_esrch(task, call):
    node, p, r = task
    p.exit()
    node.check()
    calls = {"touch": lambda: p.touch(r), "madvise": lambda: p.madvise(r, 0, PAGE, MADV.DONTNEED),
             "mmap": lambda: p.mmap(THP), "read_file": lambda: p.read_file("1M", "f"),
             "munmap": lambda: p.munmap(r)}
    with raises("ESRCH", p.name, "exited"):
        calls[call]()


def test_madv_collapse_on_nohugepage_is_einval():
    node = Node(memory="128M")
    p = node.spawn()
    r = p.mmap(THP, advice=MADV.NOHUGEPAGE)
    p.touch(r)
    with raises("EINVAL", "MADV_COLLAPSE", "NOHUGEPAGE"):
        p.madvise(r, 0, THP, MADV.COLLAPSE)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"thp": {"bogus": 1}}, ("thp.bogus", "known keys", "max_ptes_none")),
    ({"vm": {"bogus": 1}}, ("vm.bogus", "swappiness")),
    ({"swap": {"bogus": 1}}, ("swap.bogus", "kind")),
    ({"costs": {"bogus": 1}}, ("costs.bogus", "fault_4k_s")),
    ({"thp": {"enabled": "sometimes"}}, ("thp.enabled", "'sometimes'", "always")),
    ({"thp": {"defrag": "often"}}, ("thp.defrag", "defer+madvise")),
    ({"thp": {"max_ptes_none": 512}}, ("thp.max_ptes_none", "[0, 511]")),
    ({"thp": {"max_ptes_swap": -1}}, ("thp.max_ptes_swap",)),
    ({"thp": {"scan_sleep": "0ms"}}, ("scan_sleep", "> 0")),
    ({"thp": {"shrink_underused": "yes"}}, ("thp.shrink_underused",)),
    ({"vm": {"swappiness": 201}}, ("vm.swappiness", "[0, 200]")),
    ({"vm": {"kernel_share": 0.7}}, ("vm.kernel_share",)),
    ({"swap": {"kind": "tape"}}, ("swap.kind", "zram")),
    ({"swap": {"kind": "disk"}}, ("swap.size", "at least 4K")),
    ({"swap": {"kind": "zram", "size": "1G", "compression_ratio": 0.5}}, ("compression_ratio",)),
    ({"swap": {"kind": "disk", "size": "1G", "device": "floppy"}}, ("swap.device", "nvme")),
    ({"costs": {"fault_4k_s": -1}}, ("costs.fault_4k_s", ">= 0")),
    ({"costs": {"fault_4k_s": "fast"}}, ("costs.fault_4k_s",)),
    ({"memory": "100M"}, ("memory", "128M")),
    ({"memory": "129M"}, ("memory", "multiple of 2M")),
    ({"memory": "lots"}, ("memory", "'lots'")),
    ({"profile": "linux-2.6"}, ("linux-2.6", "linux-4.5", "linux-6.12")),
    ({"proposals": ["nope"]}, ("nope", "madv_splittable")),
])
def test_bad_node_settings_are_einval_and_name_key_and_bound(kwargs, words):
    with raises("EINVAL", *words):
        Node(**{"memory": "128M", **kwargs})


def test_cgroup_errors():
    node = Node(memory="128M")
    with raises("ENOENT", "'a/b'", "parent 'a'"):
        node.cgroup("a/b", max="1M")
    with raises("ENOENT", "'a/b/c'", "parent 'a/b'"):
        node.cgroup("a/b/c")   # mkdir without -p: only the last component is created
    with raises("ENOENT", "'nothere'"):
        node.spawn(cgroup="nothere")   # writing cgroup.procs of a missing cgroup
    with raises("EINVAL", "maxx", "swap_max"):
        node.cgroup("x", maxx="1M")
    with raises("EINVAL", "max", "'lots'"):
        node.cgroup("x", max="lots")
    with raises("EINVAL", "root cgroup"):
        node.cgroup("", max="1M")
    with raises("EINVAL", "oom_group"):
        node.cgroup("x", oom_group=1)
    with raises("EINVAL", "not a valid name"):
        node.cgroup("x/../y", max="1M")
    node.check()


def test_process_and_prctl_errors():
    node = Node(memory="128M")
    with raises("EINVAL", "oom_score_adj=2000", "[-1000, 1000]"):
        node.spawn(oom_score_adj=2000)
    with raises("EINVAL", "threads=0"):
        node.spawn(threads=0)
    p = node.spawn()
    with raises("EINVAL", "thp_disable=2", "except_advised"):
        p.thp_disable = 2


def test_time_and_reclaim_errors():
    node = Node(memory="128M")
    with raises("EINVAL", "'-1s'"):
        node.advance("-1s")
    with raises("EINVAL", "'soon'"):
        node.advance("soon")
    cg = node.cgroup("c", max="max")
    p = node.spawn(cgroup="c")
    p.touch(p.mmap("8M"))
    with raises("EAGAIN", "memory.reclaim", "reclaimed 0"):
        cg.reclaim("4M")
    with raises("EINVAL", "reclaim"):
        cg.reclaim("a lot")
    node.check()
