"""The scheduler process's leader turn (`scheduler/service.py`), driven turn by turn with a
pinned clock and a lock that is always held, against a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select

from models.idempotency import IdempotencyKey
from runtime.db import session_scope
from runtime.settings import get_settings
from scheduler.config import SchedulerConfig
from scheduler.leader import LeaderLock
from scheduler.service import SchedulerService
from tests.factories import make_domain, make_user
from tests.scheduler.conftest import RecordingEnqueue


class HeldLock(LeaderLock):
    """The leader lock, held for good: no connection, no NOTIFY, no waiting."""

    def __init__(self) -> None:
        super().__init__("postgresql://unused", 0)

    @property
    def held(self) -> bool:
        return True

    def check(self) -> None:
        pass

    def wait_for_notifications(self, timeout: float) -> set[str]:
        return set()

    def release(self) -> None:
        pass


class Keys:
    """Idempotency keys of one user, expired (a second ago) or live (a day to go)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.domain_id = make_domain(engine)
        self.user_id = make_user(engine, self.domain_id)

    def add(self, key: str, *, expired: bool) -> None:
        ttl = timedelta(seconds=-1) if expired else timedelta(days=1)
        with session_scope(self.engine) as session:
            session.execute(
                insert(IdempotencyKey).values(
                    domain_id=self.domain_id,
                    user_id=self.user_id,
                    key=key,
                    fingerprint="0" * 64,
                    status_code=201,
                    expires_at=datetime.now(UTC) + ttl,
                )
            )

    def left(self) -> set[str]:
        with session_scope(self.engine) as session:
            return set(session.scalars(select(IdempotencyKey.key)))


def test_each_turn_purges_expired_idempotency_keys_every_600_seconds(
    engine: Engine, settings_env: None, recorder: RecordingEnqueue
) -> None:
    # Given a leader whose clock the test moves, and one expired and one live key
    start = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
    now = [start]
    service = SchedulerService(
        engine,
        get_settings(),
        SchedulerConfig(),
        HeldLock(),
        enqueue=recorder,
        clock=lambda: now[0],
    )
    keys = Keys(engine)
    keys.add("expired", expired=True)
    keys.add("live", expired=False)
    # When the first leader turn runs
    service._turn()
    # Then the expired key is deleted and the live one kept
    assert keys.left() == {"live"}
    # Given another key that has expired since
    keys.add("expired-later", expired=True)
    # When turns run before the purge interval has passed, it stays
    now[0] = start + timedelta(seconds=599)
    service._turn()
    assert keys.left() == {"live", "expired-later"}
    # And the first turn once 600 s have passed deletes it
    now[0] = start + timedelta(seconds=600)
    service._turn()
    assert keys.left() == {"live"}
