"""An answer is due within the read timeout from the moment its request went out: the watcher
wakes when a deadline moves earlier, instead of sleeping to the connect + read deadline."""

from __future__ import annotations

import threading
import time

from payor_cli.send.deadline import Watcher


def test_a_sent_request_is_cut_off_at_its_read_timeout_not_connect_plus_read():
    watcher = Watcher()
    shut = threading.Event()
    try:
        # connect timeout 30 s, read timeout 0.1 s: sent at once, the answer is due in 0.1 s
        with watcher.watching(connect=30.0, read=0.1) as deadline:
            deadline.attach(lambda how: shut.set(), answer=False)
            time.sleep(0.5)  # the watcher is asleep, until the deadline 30.1 s away
            deadline.attach(lambda how: shut.set(), answer=True)
            # it must wake for the new one; 10 s is only the test's patience (a hundred times
            # the read timeout, a third of the old deadline)
            assert shut.wait(10), "the moved deadline was not watched"
            assert deadline.expired
    finally:
        watcher.close()
