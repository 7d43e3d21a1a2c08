"""The iteration's verifying loads and what is known of each: when its writes began to flow,
whether its verify-only pass ran, and whether its device is away (nobody may judge it then)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from harness.guest.fio import VerifyLoad


@dataclass
class Loads:
    started: dict[str, float] = field(default_factory=dict)  # writes flowing (guest time)
    verified: set[str] = field(default_factory=set)  # loads whose verify-only pass ran
    opaque: set[str] = field(default_factory=set)  # device taken away: judged by nobody
    _all: list[VerifyLoad] = field(default_factory=list)

    def __iter__(self) -> Iterator[VerifyLoad]:
        return iter(self._all)

    def __len__(self) -> int:
        return len(self._all)

    def __getitem__(self, index: int) -> VerifyLoad:
        return self._all[index]

    def add(self, load: VerifyLoad, transparent: bool = True) -> None:
        """``transparent=False``: its device is taken away under it (see :attr:`opaque`)."""
        self._all.append(load)
        if not transparent:
            self.opaque.add(load.name)

    def flowing(self, load: VerifyLoad, at: float) -> None:
        self.started[load.name] = at

    def started_at(self, load: VerifyLoad) -> float:
        return self.started[load.name]

    def unjudged(self) -> list[VerifyLoad]:
        """Loads a failure left behind that can still be judged: started, not verified,
        their device there, their guest not powered off under them."""
        return [ld for ld in self._all
                if ld.name not in self.verified and ld.name not in self.opaque
                and not ld.lost and ld.ends_at is not None]

    def stopped(self) -> list[VerifyLoad]:
        """Loads judged by someone that stopped by themselves: they say why."""
        return [ld for ld in self._all
                if ld.name not in self.opaque and not ld.running and not ld.lost]

    @property
    def any_running(self) -> bool:
        return any(ld.running for ld in self._all)
