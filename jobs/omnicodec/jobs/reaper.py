"""Free the CPUs of Ray Train runs whose Tune trial was stopped early.

A sweep trial runs Ray Train inside a Tune trial actor: the trial owns Train's controller
actor, and the controller creates the workers' placement group. When a scheduler (ASHA)
stops the trial, the trial actor and with it the controller die, but a placement group
outlives its creator actor until the creator's JOB ends (Ray's lifetime rule for
non-detached groups): the group keeps its CPUs reserved until the sweep's driver exits, and
on a small cluster the next trial waits forever for them. Ray Train 2.60 ships a
``PlacementGroupCleaner`` for this, but it asks the State API whether the controller is
alive, which needs the dashboard (omnicodec starts local Ray without it) and fails outright
when two Ray instances run on one machine; its failure is the "Failed to query Ray Train
Controller actor state" warning.

``reap_orphaned_placement_groups`` reads the GCS placement-group table directly (the same
table ``ray.util.placement_group_table`` reads; the creator fields are in its protobuf) and
removes every group created by an ACTOR that has died and that is not detached: exactly the
groups of dead Train controllers. Groups created by a driver (Tune's own trial groups) have
no creator actor (the GCS marks their creator "dead" from the start, so the creator id is
checked too) and are never touched. ``ReapStoppedTrials`` runs it from the sweep's driver
every couple of seconds.
"""

from __future__ import annotations

import logging
import time

import ray
from ray import tune

log = logging.getLogger(__name__)


def orphaned_placement_groups() -> list[bytes]:
    """IDs of live placement groups whose creator actor has died (not detached)."""
    from ray._private.state import state
    from ray.core.generated import gcs_pb2

    removed = gcs_pb2.PlacementGroupTableData.PlacementGroupState.Value("REMOVED")
    no_actor = (b"", ray.ActorID.nil().binary())  # a driver's group: the GCS marks its "actor" dead from the start
    out = []
    for raw in state._connect_and_get_accessor().get_placement_group_table():
        pg = gcs_pb2.PlacementGroupTableData.FromString(raw)
        if pg.creator_actor_id not in no_actor and pg.creator_actor_dead and not pg.is_detached and pg.state != removed:
            out.append(pg.placement_group_id)
    return out


def reap_orphaned_placement_groups() -> int:
    """Remove the placement groups of dead creator actors; returns how many."""
    from ray.util.placement_group import PlacementGroup, remove_placement_group

    n = 0
    for pg_id in orphaned_placement_groups():
        try:
            remove_placement_group(PlacementGroup(ray.PlacementGroupID(pg_id)))
            n += 1
        except Exception as e:  # already gone, or the GCS is shutting down: nothing to free
            log.debug("placement group %s: %s", pg_id.hex(), e)
    return n


class ReapStoppedTrials(tune.Callback):
    """Tune callback: every ``every_s`` seconds, free the groups of stopped trials' Train runs."""

    def __init__(self, every_s: float = 2.0):
        self.every_s, self.removed, self._last = every_s, 0, 0.0

    def on_step_begin(self, iteration: int, trials: list, **info) -> None:
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self.removed += reap_orphaned_placement_groups()
