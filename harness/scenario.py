"""Transitional: the names that lived here, until every caller imports them from their rooms
(context, registry, runner, verdict, scenarios)."""

from harness.context import Context as Context
from harness.context import ScenarioFailed as ScenarioFailed
from harness.registry import REGISTRY as REGISTRY
from harness.registry import Scenario as Scenario
from harness.registry import ScenarioSkipped as ScenarioSkipped
from harness.registry import scenario as scenario
from harness.runner import MAX_SEED as MAX_SEED
from harness.runner import run_iteration as run_iteration
from harness.scenarios import get as get
from harness.scenarios import names as names
from harness.verdict import Failure as Failure
from harness.verdict import FailureKind as FailureKind
from harness.verdict import IterationResult as IterationResult
