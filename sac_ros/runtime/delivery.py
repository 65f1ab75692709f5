"""Lossless delivery of transitions from a policy node to a learner that may crash.

DDS reliability alone is not enough: messages written while a killed learner's reader is
still matched (until its lease expires) are gone, and a learner restarted from a
checkpoint has lost what it received after that checkpoint. So:

- the sender (policy node) numbers its transitions and retains every transition the
  learner has not yet made durable (written to a checkpoint), up to a bound;
- the receiver (learner) accepts each sender's sequence numbers in order, exactly once,
  and acknowledges ``received`` (highest in-order seq) and ``durable`` (highest seq in its
  last checkpoint), together with its own session id;
- an ack from a new learner session (a restart) makes the sender resend everything after
  what that learner holds; a gap that persists is resent after a timeout.

Both sides are plain objects; the nodes carry the acks as JSON on ``sac/transitions_ack``.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sac_ros.sac.untrusted import loads


@dataclass(frozen=True)
class Ack:
    learner: str  # learner session id
    sender: str  # the sender session the numbers refer to
    received: int  # highest seq received in order (-1: none)
    durable: int  # highest seq in the learner's last checkpoint (-1: none)
    backlog: float = 0.0  # gradient updates the learner still owes the data it holds

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> Ack:
        try:
            d = loads(text)
            return cls(
                str(d["learner"]),
                str(d["sender"]),
                int(d["received"]),
                int(d["durable"]),
                float(d.get("backlog", 0.0)),
            )
        except (ValueError, KeyError, TypeError, OverflowError) as exc:
            raise ValueError(f"malformed transitions ack: {exc}") from exc


@dataclass
class Outbox:
    """Sender side: numbers, retains and (re)sends transitions. Not thread-safe."""

    session: str
    capacity: int
    resend_after: float = 2.0  # s: a gap in what the learner received that did not fill
    silence_after: float = 5.0  # s without an ack for this sender: assume it knows nothing
    next_seq: int = 0
    dropped: int = 0  # evicted before any learner received them: lost for good
    evicted_unconfirmed: int = 0  # evicted after receipt but before a checkpoint
    resent: int = 0
    _items: deque[tuple[int, Any]] = field(default_factory=deque)
    _send_from: int = 0  # first seq not yet handed out for sending
    _received: int = -1  # what the current learner holds
    _durable: int = -1
    _learner: str | None = None
    _last_progress: float = 0.0
    _last_heard: float | None = None  # the latest ack for this session (or the first poll)
    learner_backlog: float = 0.0  # from the latest ack: updates the learner owes

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError("outbox capacity must be at least 1")

    def add(self, item: Any) -> int:
        seq = self.next_seq
        self.next_seq += 1
        self._items.append((seq, item))
        while len(self._items) > self.capacity:
            old_seq, _ = self._items.popleft()
            if old_seq > self._received:
                self.dropped += 1
            else:
                self.evicted_unconfirmed += 1
        return seq

    def take(self, max_items: int) -> list[tuple[int, Any]]:
        """Up to ``max_items`` (seq, item) pairs to publish now, oldest first."""
        if not self._items:
            return []
        first = self._items[0][0]
        start = max(self._send_from, first)
        out = [
            self._items[i - first]
            for i in range(start, min(start + max_items, self.next_seq))
        ]
        if out:
            self._send_from = out[-1][0] + 1
        return out

    def on_ack(self, ack: Ack, now: float) -> None:
        if ack.sender != self.session:
            return  # numbers of an earlier run of this sender
        if ack.learner != self._learner:
            # A learner we have not heard from (first contact or a restart): it holds
            # exactly what it says; send everything after that again.
            self._learner = ack.learner
            self._rewind(ack.received, now)
        elif ack.received > self._received:
            self._last_progress = now
        elif ack.received < self._send_from - 1 and now - self._last_progress > self.resend_after:
            self._rewind(ack.received, now)  # a gap that did not fill: lost in transit
        self._last_heard = now
        self._received = max(ack.received, -1)
        self._durable = ack.durable
        self.learner_backlog = ack.backlog
        while self._items and self._items[0][0] <= self._durable:
            self._items.popleft()

    def poll(self, now: float) -> None:
        """Call before each ``take``. A learner acks every sender it knows, steadily; one
        that has said nothing about this sender for ``silence_after`` while it holds
        transitions not yet in a checkpoint may have lost them: a learner killed and
        resumed from a checkpoint taken before this sender first reached it does not know
        the sender at all, and would never ask. Forget what it was believed to hold (and
        its backlog: nothing to pace by) and send again from the last checkpointed one;
        the receiver drops what it already has."""
        if self._last_heard is None:
            self._last_heard = now  # the clock starts with the first poll
            return
        if now - self._last_heard <= self.silence_after:
            return
        self.learner_backlog = 0.0  # a learner not heard from paces nothing
        if self._send_from <= self._durable + 1:
            return
        self._learner, self._received = None, self._durable
        self._rewind(self._durable, now)
        self._last_heard = now  # once per silence_after at most

    def _rewind(self, received: int, now: float) -> None:
        if received + 1 < self._send_from:
            self.resent += self._send_from - (received + 1)
            self._send_from = received + 1
        self._last_progress = now

    @property
    def first_retained(self) -> int:
        """Oldest seq still held (sent with every message), next_seq when empty."""
        return self._items[0][0] if self._items else self.next_seq

    @property
    def retained(self) -> int:
        return len(self._items)

    @property
    def unsent(self) -> int:
        if not self._items:
            return 0
        return self.next_seq - max(self._send_from, self._items[0][0])

    @property
    def learner_received(self) -> int:
        return self._received

    def delivered(self, now: float) -> bool:
        """The learner holds everything added so far, by an ack heard recently, or all of
        it is in a learner's checkpoint (which then has no reason to ack a quiet sender)."""
        if self._durable >= self.next_seq - 1:
            return True
        if self._learner is None or self._last_heard is None:
            return False  # no learner heard from (or forgotten by poll)
        return now - self._last_heard <= self.silence_after and self._received >= self.next_seq - 1


@dataclass
class SenderState:
    received: int = -1
    durable: int = -1
    heard: float = 0.0  # clock at the last batch from this sender
    told_backlog: float = 0.0  # the backlog of the last ack to it (a waiting sender's pace)


class Inbox:
    """Receiver side: accepts each sender's numbers in order, exactly once.

    Every sender session stays known (a few bytes; it may send again, and must not be
    taken for a new one), but a sender quiet for ``quiet_after`` seconds whose data is
    all durable is no longer acknowledged: each policy-node restart starts a session,
    and acking every past one at the ack rate would grow without bound. It is acked
    again from its next batch on."""

    def __init__(
        self,
        learner_session: str,
        quiet_after: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.learner_session = learner_session
        self.quiet_after = quiet_after
        self._clock = clock
        # (stream, sender session) -> state; a stream is one robot's topic.
        self.senders: dict[tuple[str, str], SenderState] = {}
        self.duplicates = 0
        self.gaps = 0
        self.lost = 0  # released by a sender before this receiver got them

    def accept(
        self, stream: str, session: str, seqs: list[int], first_retained: int
    ) -> list[int]:
        """Indices into ``seqs`` of the transitions to store (new and in order).

        ``first_retained`` is the oldest seq the sender still holds: on first contact
        the receiver starts there, and it never waits for what the sender let go.
        """
        state = self.senders.get((stream, session))
        if state is None:
            state = self.senders[(stream, session)] = SenderState()
        state.heard = self._clock()
        if state.received < first_retained - 1:
            if state.received >= 0:
                self.lost += first_retained - 1 - state.received
            state.received = first_retained - 1
        keep: list[int] = []
        for i, seq in enumerate(seqs):
            if seq <= state.received:
                self.duplicates += 1
            elif seq == state.received + 1:
                state.received = seq
                keep.append(i)
            else:
                self.gaps += 1  # wait for the sender to resend from state.received + 1
                break
        return keep

    def mark_durable(self) -> None:
        """Everything received so far is now in a checkpoint."""
        for state in self.senders.values():
            state.durable = state.received

    def acks(self, stream: str, backlog: float = 0.0) -> list[Ack]:
        """One ack per sender of ``stream`` heard within ``quiet_after`` or with data
        not yet durable."""
        now = self._clock()
        out = []
        for (st, session), s in self.senders.items():
            # A quiet sender may be quiet because it waits for the backlog it was told to
            # fall (a lockstep simulation paced by the learner): it hears on until told 0.
            if st == stream and (
                now - s.heard < self.quiet_after or s.received > s.durable or s.told_backlog > 0
            ):
                out.append(Ack(self.learner_session, session, s.received, s.durable, backlog))
                s.told_backlog = backlog
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "senders": [
                {"stream": st, "session": se, "received": s.durable}
                for (st, se), s in self.senders.items()
            ]
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from a checkpoint: what is held is exactly what was durable."""
        now = self._clock()  # a resumed learner announces itself to every known sender
        self.senders = {
            (d["stream"], d["session"]): SenderState(int(d["received"]), int(d["received"]), now)
            for d in state["senders"]
        }
