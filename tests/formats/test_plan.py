"""The plan file of ``gefion plan``: what it reads, and errors that name file, line, field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gefion.core.errors import InputError, SpecError, TopologyError
from gefion.core.jobs import Dependency, DependencyKind, JobState, TopologyConstraint
from gefion.core.tenancy import DEFAULT_QOS
from gefion.core.topology import NodeState
from gefion.formats.plan import PlanInput, load_plan, parse_plan

REPO = Path(__file__).parents[2]
FIXTURES = Path(__file__).parent / "fixtures"

# Eight 8-GPU nodes n1..n8 in two units; every case below starts with this.
HEADER = """\
cluster:
  units:
    - {name: su1, nodes: "n[1-4]"}
    - {name: su2, nodes: "n[5-8]"}
now: 1000
"""


def plan(body: str, source: str = "jobs.yaml") -> PlanInput:
    return parse_plan(HEADER + textwrap.dedent(body).lstrip("\n"), source, FIXTURES)


def test_the_example_plan() -> None:
    p = load_plan(REPO / "examples" / "plan-small.yaml")
    assert p.cluster.name == "gefion" and p.now == 7200 and p.policy == "gefion"
    assert [j.id for j in p.running] == ["1001", "1002", "1003", "1004"]
    gang = p.jobs[0]
    assert gang.spec.gpus == 256 and len(gang.allocation) == 32
    assert gang.allocation[0] == ("dgx001", tuple(range(8)))
    assert gang.spec.same_su is TopologyConstraint.REQUIRED
    # two small jobs share dgx033, with disjoint GPU indices, lowest first
    assert p.jobs[1].allocation == (("dgx033", (0, 1, 2, 3)),)
    assert p.jobs[2].allocation == (("dgx033", (4, 5)),)
    assert [j.id for j in p.pending] == ["1005", "1006", "1007", "1008", "1009"]
    assert p.jobs[7].spec.depends_on == (Dependency(DependencyKind.AFTEROK, "1007"),)
    assert p.jobs[8].held
    assert [r.name for r in p.reservations] == ["forecast"]
    assert p.reservations[0].nodes == ("dgx188", "dgx189", "dgx190", "dgx191")
    assert p.projects["climate"].metered and p.grants[0].gpu_s == 50000 * 3600
    snapshot = p.snapshot()
    assert len(snapshot.running) == 4 and len(snapshot.pending) == 5


def test_a_minimal_plan_takes_every_default() -> None:
    p = parse_plan("cluster: superpod:1\n", "min.yaml", FIXTURES)
    assert (p.now, p.policy, p.policy_params, p.jobs) == (0.0, "gefion", {}, ())
    assert p.qos == DEFAULT_QOS and p.projects == {} and p.grants == ()
    assert p.reservations == () and p.charged_gpu_s == {}
    assert len(p.cluster.nodes) == 31


def test_job_fields_reach_the_core_records() -> None:
    p = plan("""
        policy: fifo
        policy_params: {depth: 2, weights: {age: 1.5}}
        reservations:
          - {name: pilot, nodes: "n[7-8]", start: 0, end: 5000}
        pending:
          - id: 42
            gpus: 16
            nodes: 2
            gpus_per_node: 8
            time_limit: 3600
            project: p
            submit: 900
            qos: scavenger
            user: ada
            name: train
            same_su: true
            preemptible: false
            grace: 120
            depends_on: ["afterok:40:41", singleton]
            reservation: pilot
            held: true
            array_index: 3
            exclusive: true
            service_gpu_s: 7200
    """)
    assert p.policy == "fifo"
    assert p.policy_params == {"depth": 2, "weights": {"age": 1.5}}
    assert type(p.policy_params["weights"]) is dict  # plain data, not the YAML wrappers
    job = p.jobs[0]
    assert (job.id, job.state, job.submit_s, job.held, job.service_gpu_s) == (
        "42", JobState.PENDING, 900.0, True, 7200.0)
    s = job.spec
    assert (s.gpus, s.nodes, s.gpus_per_node, s.time_limit_s, s.project, s.qos, s.user,
            s.name) == (16, 2, 8, 3600, "p", "scavenger", "ada", "train")
    assert (s.same_su, s.preemptible, s.grace_s, s.reservation, s.array_index,
            s.exclusive) == (TopologyConstraint.REQUIRED, False, 120, "pilot", 3, True)
    assert [str(d) for d in s.depends_on] == ["afterok:40", "afterok:41", "singleton"]


@pytest.mark.parametrize(("value", "constraint"), [
    pytest.param("true", TopologyConstraint.REQUIRED, id="true-is-required"),
    pytest.param("false", TopologyConstraint.PREFERRED, id="false-is-preferred"),
    pytest.param("required", TopologyConstraint.REQUIRED, id="word-required"),
    pytest.param("preferred", TopologyConstraint.PREFERRED, id="word-preferred"),
])
def test_same_su(value: str, constraint: TopologyConstraint) -> None:
    p = plan(f"pending: [{{id: a, gpus: 8, time_limit: 60, project: p, same_su: {value}}}]\n")
    assert p.jobs[0].spec.same_su is constraint


def test_placements_get_gpu_indices_lowest_first_without_overlap() -> None:
    p = plan("""
        running:
          - {id: a, gpus: 3, time_limit: 600, project: p, start: 0, placement: [n1]}
          - {id: b, gpus: 10, time_limit: 600, project: p, start: 0,
             placement: {n1: 2, n2: 8}}
          - {id: c, gpus: 16, time_limit: 600, project: p, start: 0, placement: "n[3-4]"}
          - {id: d, gpus: 6, time_limit: 600, project: p, start: 0,
             placement: {"n[5-6]": 3}}
          - {id: e, gpus: 3, time_limit: 600, project: p, start: 0, placement: {n1: 3}}
    """)
    alloc = {j.id: j.allocation for j in p.jobs}
    assert alloc["a"] == (("n1", (0, 1, 2)),)
    assert alloc["b"] == (("n1", (3, 4)), ("n2", tuple(range(8))))
    assert alloc["c"] == (("n3", tuple(range(8))), ("n4", tuple(range(8))))
    assert alloc["d"] == (("n5", (0, 1, 2)), ("n6", (0, 1, 2)))
    assert alloc["e"] == (("n1", (5, 6, 7)),)
    assert all(j.state is JobState.RUNNING and j.start_s == 0 for j in p.jobs)


def test_tenancy_sections() -> None:
    p = plan("""
        projects:
          p: {shares: 3, members: [ada], max_gpus: 16, metered: true, sensitive: true}
          q:
        qos:
          normal: {priority: 5}
          gold: {priority: 50, preempts: [normal, scavenger], max_time_limit: 7200,
                 max_gpus_per_user: 32, grace: 10, usage_factor: 2, requeue: false,
                 preemptible: false}
        grants:
          - {id: 1, project: p, gpu_hours: 100, valid_from: 0, valid_to: 86400,
             funder: EU}
        usage: {p: 3600}
        drained: "n[1-2]"
        down: [n8]
    """)
    assert p.projects["p"].shares == 3 and p.projects["p"].members == {"ada"}
    assert p.projects["p"].max_gpus == 16 and p.projects["p"].sensitive
    assert p.projects["q"].shares == 1.0  # an empty entry takes the defaults
    assert p.qos["normal"].priority == 5 and p.qos["high"] == DEFAULT_QOS["high"]
    gold = p.qos["gold"]
    assert (gold.preempts, gold.max_time_limit_s, gold.max_gpus_per_user, gold.grace_s,
            gold.usage_factor, gold.requeue) == (
        frozenset({"normal", "scavenger"}), 7200, 32, 10, 2.0, False)
    assert p.grants[0].id == "1" and p.grants[0].valid_to_s == 86400
    assert p.charged_gpu_s == {"p": 3600.0}
    states = {n.name: n.state for n in p.cluster.nodes}
    assert states["n1"] is states["n2"] is NodeState.DRAINED
    assert states["n8"] is NodeState.DOWN and states["n3"] is NodeState.IDLE


def test_a_topology_file_is_found_beside_the_plan() -> None:
    p = load_plan(FIXTURES / "plan-on-file.yaml")
    assert p.cluster.name == "mini" and p.jobs[0].allocation == (("gpu05", (0, 1, 2, 3)),)


def test_a_missing_plan_file_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"nope\.yaml: cannot read the plan file"):
        load_plan(FIXTURES / "nope.yaml")


def test_errors_in_the_topology_file_name_that_file(tmp_path: Path) -> None:
    (tmp_path / "topo.yaml").write_text("units:\n  - {name: a, nodes: n1, gpus: -1}\n")
    with pytest.raises(TopologyError) as info:
        parse_plan("cluster: topo.yaml\n", "jobs.yaml", tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'topo.yaml'}:2: field 'units[0].gpus'")


R = "{id: r, time_limit: 600, project: p, start: 0"  # a running job, to finish
P = "{id: q, gpus: 8, time_limit: 600, project: p"  # a pending job, to finish

# Each case marks the line the error must name with "# <-".
ERRORS = [
    ("negative-gpus", """
        pending:
          - {id: a, gpus: 8, time_limit: 60, project: p}
          - {id: b, gpus: 8, time_limit: 60, project: p}
          - id: c
            gpus: -4      # <-
            time_limit: 60
            project: p
    """, "pending[2].gpus", "must be a whole number >= 0, got -4"),
    ("unknown-top-level-field", """
        pendng: []      # <-
    """, "pendng", "unknown field (did you mean 'pending'?)"),
    ("unknown-job-field", f"""
        pending:
          - {P}, gpu: 3}}      # <-
    """, "pending[0].gpu", "unknown field (did you mean 'gpus'?)"),
    ("missing-time-limit", """
        pending:
          - id: a      # <-
            gpus: 1
            project: p
    """, "pending[0].time_limit", "is required"),
    ("time-limit-not-seconds", """
        pending:
          - id: a
            gpus: 1
            time_limit: 1h      # <-
            project: p
    """, "pending[0].time_limit", "must be a whole number >= 1, got '1h'"),
    ("duplicate-job-id", f"""
        running:
          - {R}, gpus: 8, placement: [n1]}}
        pending:
          - {{id: r, gpus: 1, time_limit: 60, project: p}}      # <-
    """, "pending[0].id", "duplicate job id 'r' (first on line 7)"),
    ("number-and-string-ids-collide", """
        pending:
          - {id: 7, gpus: 1, time_limit: 60, project: p}
          - {id: "7", gpus: 1, time_limit: 60, project: p}      # <-
    """, "pending[1].id", "duplicate job id '7'"),
    ("unknown-node-in-placement-list", f"""
        running:
          - {R}, gpus: 16,
             placement: [n1,
                         n9]}}      # <-
    """, "running[0].placement[1]", "no node named 'n9' in cluster"),
    ("unknown-node-in-placement-mapping", f"""
        running:
          - {R}, gpus: 8,
             placement: {{n99: 8}}}}      # <-
    """, "running[0].placement.n99", "no node named 'n99'"),
    ("over-committed-node", f"""
        running:
          - {R}, gpus: 6, placement: [n2]}}
          - {{id: s, gpus: 4, time_limit: 60, project: p, start: 0,
             placement: [n2]}}      # <-
    """, "running[1].placement[0]",
     "node 'n2' is over-committed: job 's' needs 4 GPUs there, but only 2 of 8 are free "
     "(held by r)"),
    ("placement-does-not-split-evenly", f"""
        running:
          - {R}, gpus: 12,
             placement: "n[1-5]"}}      # <-
    """, "running[0].placement", "gpus=12 do not split evenly over 5 nodes"),
    ("placement-mapping-total", f"""
        running:
          - {R}, gpus: 8,
             placement: {{n1: 4, n2: 2}}}}      # <-
    """, "running[0].placement", "places 6 GPUs, but the job has gpus=8"),
    ("placement-node-count", f"""
        running:
          - {R}, gpus: 16, nodes: 1,
             placement: [n1, n2]}}      # <-
    """, "running[0].placement", "places the job on 2 nodes, but it asks for nodes=1"),
    ("placement-gpus-per-node", f"""
        running:
          - {R}, gpus: 8, gpus_per_node: 4,
             placement: {{n1: 4,
                         n2: 2, n3: 2}}}}      # <-
    """, "running[0].placement.n2", "places 2 GPUs on 'n2', but the job asks for "
                                    "gpus_per_node=4"),
    ("placement-missing", f"""
        running:
          - {R}, gpus: 8}}      # <-
    """, "running[0].placement", "is required"),
    ("exclusive-beside-another-job", f"""
        running:
          - {R}, gpus: 2, placement: [n1]}}
          - {{id: s, gpus: 2, time_limit: 60, project: p, start: 0, exclusive: true,
             placement: [n1]}}      # <-
    """, "running[1].placement[0]", "node 'n1' cannot hold job 's' beside job(s) r"),
    ("core-spec-error-is-located", """
        pending:
          - id: a
            gpus: 10      # <-
            nodes: 2
            gpus_per_node: 4
            time_limit: 60
            project: p
    """, "pending[0].gpus", "gpus=10 is not nodes × gpus_per_node = 2 × 4"),
    ("bad-dependency-in-a-list", f"""
        pending:
          - {P},
             depends_on: ["afterok:1",
                          "afterwards:2"]}}      # <-
    """, "pending[0].depends_on[1]", "unknown dependency type 'afterwards'"),
    ("dependency-not-a-string", f"""
        pending:
          - {P}, depends_on: 12}}      # <-
    """, "pending[0].depends_on", "must be a list, got 12"),
    ("unknown-qos", f"""
        pending:
          - {P}, qos: gold}}      # <-
    """, "pending[0].qos", "unknown QOS 'gold'; known: high, normal, scavenger"),
    ("unknown-project", f"""
        projects: {{a: {{}}, b: {{}}}}
        pending:
          - {P}}}      # <-
    """, "pending[0].project", "unknown project 'p'; the file's projects are a, b"),
    ("unknown-reservation", f"""
        pending:
          - {P}, reservation: pilot}}      # <-
    """, "pending[0].reservation", "unknown reservation 'pilot'"),
    ("running-job-starts-after-now", """
        running:
          - {id: r, gpus: 8, time_limit: 600, project: p,
             start: 2000, placement: [n1]}      # <-
    """, "running[0].start", "a running job must have started by now (1000), got 2000"),
    ("pending-job-submitted-after-now", f"""
        pending:
          - {P}, submit: 5000}}      # <-
    """, "pending[0].submit", "must be <= now (1000), got 5000"),
    ("held-is-for-pending-jobs", f"""
        running:
          - {R}, gpus: 8, placement: [n1], held: true}}      # <-
    """, "running[0].held", "unknown field"),
    ("same-su-word", f"""
        pending:
          - {P}, same_su: always}}      # <-
    """, "pending[0].same_su", "must be true, false, 'required' or 'preferred'"),
    ("negative-grace", f"""
        pending:
          - {P}, grace: -5}}      # <-
    """, "pending[0].grace", "must be a whole number >= 0, got -5"),
    ("reservation-unknown-node", """
        reservations:
          - name: pilot
            nodes: "n[7-9]"      # <-
            start: 0
            end: 10
    """, "reservations[0].nodes", "no node named 'n9'"),
    ("reservation-ends-before-it-starts", """
        reservations:
          - name: pilot
            nodes: n1
            start: 100
            end: 50      # <-
    """, "reservations[0].end", "end must be after start"),
    ("reservation-bad-hostlist", """
        reservations:
          - {name: x, start: 0, end: 1,
             nodes: "n[2-"}      # <-
    """, "reservations[0].nodes", "bad hostlist expression 'n[2-'"),
    ("qos-preempts-unknown", """
        qos:
          gold:
            preempts: [normal,
                       bronze]      # <-
    """, "qos.gold.preempts[1]", "unknown QOS 'bronze'"),
    ("qos-unknown-field", """
        qos:
          gold: {priority: 1, max_time: 5}      # <-
    """, "qos.gold.max_time", "unknown field (did you mean 'max_time_limit'?)"),
    ("project-negative-shares", """
        projects:
          p:
            shares: -1      # <-
    """, "projects.p.shares", "must be a number >= 0, got -1"),
    ("duplicate-grant", """
        grants:
          - {id: g, project: p, gpu_hours: 1}
          - {id: g, project: p, gpu_hours: 2}      # <-
    """, "grants[1].id", "duplicate grant id 'g' (first on line 7)"),
    ("grant-window-backwards", """
        grants:
          - id: g
            project: p
            gpu_hours: 10
            valid_from: 100
            valid_to: 10      # <-
    """, "grants[0].valid_to", "valid_to must be after valid_from"),
    ("usage-negative", """
        usage:
          p: -3      # <-
    """, "usage.p", "must be a number >= 0, got -3"),
    ("drained-unknown-node", """
        drained: [n1, n12]      # <-
    """, "drained[1]", "no node named 'n12'"),
    ("node-both-drained-and-down", """
        drained: n1
        down: "n[1-2]"      # <-
    """, "down", "node 'n1' is listed as both drained and down"),
    ("policy-params-not-a-mapping", """
        policy_params: [depth]      # <-
    """, "policy_params", "must be a mapping, got a list"),
    ("jobs-not-a-list", """
        pending: {id: 1}      # <-
    """, "pending", "must be a list, got a mapping"),
]


@pytest.mark.parametrize(("body", "field", "message"),
                         [pytest.param(b, f, m, id=case) for case, b, f, m in ERRORS])
def test_errors_name_file_line_and_field(body: str, field: str, message: str) -> None:
    text = HEADER + textwrap.dedent(body).lstrip("\n")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.endswith("# <-"))
    with pytest.raises(InputError) as info:
        parse_plan(text, "jobs.yaml", FIXTURES)
    err = info.value
    assert (err.source, err.line, err.field) == ("jobs.yaml", line, field), str(err)
    assert str(err).startswith(f"jobs.yaml:{line}: field '{field}': ")
    assert message in str(err)


def test_core_errors_keep_their_type() -> None:
    with pytest.raises(SpecError):
        plan("pending: [{id: a, gpus: 10, nodes: 2, gpus_per_node: 4, time_limit: 1, "
             "project: p}]\n")


@pytest.mark.parametrize(("text", "line", "field", "message"), [
    pytest.param("cluster: gefon\n", 1, "cluster", "unknown cluster preset 'gefon'",
                 id="unknown-preset"),
    pytest.param("now: 5\n", 1, "cluster", "is required", id="no-cluster"),
    pytest.param("cluster: gefion\nnow: soon\n", 2, "now", "must be a number, got 'soon'",
                 id="now-not-a-number"),
    pytest.param("cluster: gefion\npending: [\n", 3, None, "invalid YAML",
                 id="malformed-yaml"),
    pytest.param("", 1, None, "must be a mapping, got nothing", id="empty-file"),
])
def test_top_level_errors(text: str, line: int, field: str | None, message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_plan(text, "jobs.yaml", FIXTURES)
    err = info.value
    assert (err.source, err.line, err.field) == ("jobs.yaml", line, field), str(err)
    assert message in str(err)


def yaml_blocks(doc: Path) -> list[str]:
    return [block.split("```", 1)[0] for block in doc.read_text().split("```yaml\n")[1:]]


@pytest.mark.parametrize("block", yaml_blocks(REPO / "docs" / "plan-format.md"))
def test_the_yaml_in_the_plan_format_doc_parses(block: str) -> None:
    text = block if block.startswith("cluster:") else "cluster: gefion\nnow: 7200\n" + block
    assert parse_plan(text, "doc.yaml", REPO).cluster.name == "gefion"
