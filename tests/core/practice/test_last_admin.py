"""A practice can never lock itself out: the last active admin stays, even under concurrent changes."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import backends
from twofold.context import RequestContext
from twofold.core.practice.members import LastAdmin


@pytest.fixture(params=backends())
def backend(request):
    return request.param


@pytest.mark.parametrize("change", [{"role": "staff"}, {"active": False}])
def test_two_admins_removing_each_other_at_once_leave_one(services, practice, make_user, change):
    first, second = make_user(role="admin"), make_user(role="admin")
    barrier = threading.Barrier(2)
    outcomes = {}

    def remove(actor, target):
        barrier.wait()
        try:
            services.members.update_member(
                practice_id=practice.id, actor_id=actor.id, member_id=target.id, context=RequestContext(), **change
            )
            outcomes[target.id] = "removed"
        except LastAdmin:
            outcomes[target.id] = "refused"

    threads = [threading.Thread(target=remove, args=pair) for pair in ((first, second), (second, first))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["refused", "removed"]
    remaining = services.members.list_members(practice_id=practice.id).items
    assert sum(m.role == "admin" and m.active for m in remaining) == 1
