"""YAML with lines: plain data, 1-based lines, typed field access and located errors."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from gefion.core.errors import InputError, SpecError, TopologyError
from gefion.formats.yamlsrc import Fields, Value, YamlList, YamlMap, load_yaml, to_plain


def load(text: str, source: str = "f.yaml") -> Value:
    return load_yaml(textwrap.dedent(text).lstrip("\n"), source)


def assert_located(err: InputError, source: str, line: int | None, field: str | None) -> None:
    assert (err.source, err.line, err.field) == (source, line, field)
    where = f"{source}:{line}: " if line is not None else f"{source}: "
    what = f"field '{field}': " if field else ""
    assert str(err).startswith(where + what), str(err)


def test_data_is_plain_and_keeps_the_line_of_every_key_and_item() -> None:
    root = load("""
        name: x
        jobs:
          - id: a
            gpus: 8

          - id: b
        tags: [p, q]
    """)
    data = root.data
    assert isinstance(data, dict) and isinstance(data, YamlMap)
    assert data == {"name": "x", "jobs": [{"id": "a", "gpus": 8}, {"id": "b"}],
                    "tags": ["p", "q"]}
    assert data.key_lines == {"name": 1, "jobs": 2, "tags": 7}
    jobs = data["jobs"]
    assert isinstance(jobs, YamlList) and jobs.item_lines == [3, 6]
    assert jobs[0].key_lines == {"id": 3, "gpus": 4}
    assert to_plain(data) == data and type(to_plain(data)) is dict
    assert type(to_plain(data)["jobs"][0]) is dict


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("010", 10, id="leading-zero-is-decimal-not-octal"),
    pytest.param("1_000", 1000, id="underscores-in-int"),
    pytest.param("-4", -4, id="negative-int"),
    pytest.param("1e9", 1e9, id="exponent-without-dot-is-float"),
    pytest.param("2.5", 2.5, id="plain-float"),
    pytest.param(".inf", float("inf"), id="infinity"),
    pytest.param("1:30", "1:30", id="no-sexagesimal"),
    pytest.param("0x10", "0x10", id="hex-stays-a-string"),
    pytest.param("!!int 0x10", 16, id="explicit-int-tag-may-use-hex"),
    pytest.param("true", True, id="bool"),
    pytest.param("afterok:12:13", "afterok:12:13", id="dependency-string"),
    pytest.param("", None, id="empty-is-null"),
])
def test_scalars_follow_the_yaml_1_2_core_schema(text: str, expected: Any) -> None:
    value = load(f"v: {text}\n").data["v"]
    assert value == expected and type(value) is type(expected)


def test_an_empty_document_is_none() -> None:
    assert load("# nothing here\n").data is None


@pytest.mark.parametrize(("text", "line", "fragment"), [
    pytest.param("a: 1\nb: [1, 2\nc: 3\n", 3, "invalid YAML", id="unclosed-flow-list"),
    pytest.param("a: 1\n  b: 2\n", 2, "mapping values are not allowed", id="bad-indent"),
    pytest.param("a: 1\nb: 2\na: 3\n", 3, "duplicate field 'a' (first on line 1)",
                 id="duplicate-key"),
    pytest.param("a: 1\n---\nb: 2\n", 2, "invalid YAML", id="two-documents"),
    pytest.param("a: !!python/name:os.system x\n", 1, "invalid YAML", id="unsafe-tag"),
    pytest.param("a: &x [1, *x]\n", 1, "alias refers to a node that contains it",
                 id="recursive-alias"),
    pytest.param("a: 1\n? [k]\n: 2\n", 2, "mapping key must be a plain name",
                 id="list-as-key"),
])
def test_malformed_yaml_is_an_input_error_with_the_line(text: str, line: int,
                                                       fragment: str) -> None:
    with pytest.raises(InputError) as info:
        load_yaml(text, "bad.yaml")
    assert info.value.source == "bad.yaml" and info.value.line == line
    assert fragment in str(info.value)
    assert str(info.value).startswith(f"bad.yaml:{line}: ")


def test_malformed_yaml_raises_the_callers_error_type() -> None:
    with pytest.raises(TopologyError):
        load_yaml("a: [", "t.yaml", error_type=TopologyError)


def test_merge_keys_fill_in_but_never_override() -> None:
    root = load("""
        base: &base {gpus: 8, qos: normal}
        job:
          qos: high
          <<: *base
    """)
    job = root.data["job"]
    assert job == {"qos": "high", "gpus": 8}
    assert job.key_lines["qos"] == 3 and job.key_lines["gpus"] == 1


JOB = """
jobs:
  - id: 7
    gpus: 8
    name: train
    held: false
    ratio: 2
"""


def job_fields(required: tuple[str, ...] = ("id", "gpus"),
               optional: tuple[str, ...] = ("name", "held", "ratio", "extra")) -> Fields:
    items = load(JOB).as_fields(["jobs"]).items("jobs")
    return items[0].as_fields(required, optional)


def test_fields_read_typed_values_and_defaults() -> None:
    f = job_fields()
    assert f.ident("id") == "7"  # a number used as an id reads as a string
    assert f.integer("gpus", ge=0) == 8
    assert f.string("name") == "train"
    assert f.boolean("held") is False
    assert f.number("ratio") == 2.0 and isinstance(f.number("ratio"), float)
    assert f.integer("extra", 3) == 3
    assert f.string("extra", None) is None
    assert "extra" not in f and "gpus" in f
    assert f.line_of("gpus") == 3 and f.line_of("extra") == 2


def test_an_unknown_field_is_named_with_its_line_and_a_hint() -> None:
    with pytest.raises(InputError) as info:
        job_fields(optional=("names", "held", "ratio"))
    assert_located(info.value, "f.yaml", 4, "jobs[0].name")
    assert "unknown field (did you mean 'names'?)" in str(info.value)


def test_an_unknown_field_far_from_any_known_lists_the_known_ones() -> None:
    with pytest.raises(InputError) as info:
        load("zzz: 1\n").as_fields((), ("alpha", "beta"))
    assert_located(info.value, "f.yaml", 1, "zzz")
    assert "expected one of: alpha, beta" in str(info.value)


def test_a_missing_required_field_is_named_at_the_mapping_line() -> None:
    with pytest.raises(InputError) as info:
        job_fields(required=("id", "gpus", "project"))
    assert_located(info.value, "f.yaml", 2, "jobs[0].project")
    assert str(info.value).endswith("is required")


@pytest.mark.parametrize(("yaml_value", "read", "message"), [
    pytest.param("-4", lambda f: f.integer("v", ge=0),
                 "must be a whole number >= 0, got -4", id="int-below-bound"),
    pytest.param("true", lambda f: f.integer("v"),
                 "must be a whole number, got true", id="bool-is-not-an-int"),
    pytest.param("2.5", lambda f: f.integer("v"),
                 "must be a whole number, got 2.5", id="float-is-not-an-int"),
    pytest.param("'8'", lambda f: f.integer("v"),
                 "must be a whole number, got '8'", id="string-is-not-an-int"),
    pytest.param("", lambda f: f.integer("v"),
                 "must be a whole number, got nothing", id="required-but-empty"),
    pytest.param("abc", lambda f: f.number("v"),
                 "must be a number, got 'abc'", id="string-is-not-a-number"),
    pytest.param(".nan", lambda f: f.number("v"),
                 "must be a number, got nan", id="nan-is-not-a-number"),
    pytest.param("1" + "0" * 400, lambda f: f.number("v"),
                 "must be a number, got one too large", id="int-too-large-for-a-float"),
    pytest.param(".inf", lambda f: f.number("v", finite=True),
                 "must be a finite number, got inf", id="infinite-where-finite"),
    pytest.param("-1.5", lambda f: f.number("v", ge=0),
                 "must be a number >= 0, got -1.5", id="number-below-bound"),
    pytest.param("12", lambda f: f.string("v"), "must be a string, got 12",
                 id="int-is-not-a-string"),
    pytest.param("'  '", lambda f: f.string("v"), "must not be empty", id="blank-string"),
    pytest.param("[a]", lambda f: f.ident("v"),
                 "must be a string or a whole number, got a list", id="list-is-not-an-id"),
    pytest.param("yes please", lambda f: f.boolean("v"),
                 "must be true or false, got 'yes please'", id="string-is-not-a-bool"),
    pytest.param("{a: 1}", lambda f: f.items("v"), "must be a list, got a mapping",
                 id="mapping-is-not-a-list"),
    pytest.param("[1, x]", lambda f: f.strings("v"), "must be a string, got 1",
                 id="list-item-is-not-a-string"),
    pytest.param("[1]", lambda f: f.get("v").as_fields(), "must be a mapping, got a list",
                 id="list-is-not-a-mapping"),
])
def test_type_errors_name_file_line_and_field(yaml_value: str, read: Any,
                                              message: str) -> None:
    f = load(f"top:\n  other: 1\n  v: {yaml_value}\n").as_fields(["top"]).get("top") \
        .as_fields((), ("other", "v"))
    with pytest.raises(InputError) as info:
        read(f)
    assert_located(info.value, "f.yaml", 3, "top.v[0]" if yaml_value == "[1, x]" else "top.v")
    assert str(info.value).endswith(message)


def test_values_of_free_mappings_and_lists_carry_paths_and_lines() -> None:
    root = load("""
        usage:
          proj-a: 10
          proj-b: 20
        nodes:
          - n1
          - n2
    """).as_fields((), ("usage", "nodes"))
    entries = root.get("usage").as_entries()
    assert [(k, v.data, v.line, v.field) for k, v in entries] == [
        ("proj-a", 10, 2, "usage.proj-a"), ("proj-b", 20, 3, "usage.proj-b")]
    assert [(v.data, v.line, v.field) for v in root.get("nodes").as_list()] == [
        ("n1", 5, "nodes[0]"), ("n2", 6, "nodes[1]")]
    assert root.strings("nodes") == ["n1", "n2"]
    assert root.strings("missing") == [] and root.items("missing") == []


def test_a_core_error_about_a_key_is_located_at_that_key() -> None:
    f = job_fields()
    err = f.relocate(SpecError("is not nodes × gpus_per_node", field="gpus"))
    assert isinstance(err, SpecError)
    assert_located(err, "f.yaml", 3, "jobs[0].gpus")


def test_a_core_error_about_a_value_takes_the_values_path() -> None:
    v = job_fields().get("name")
    err = v.relocate(SpecError("unknown dependency type", field="depends_on"))
    assert_located(err, "f.yaml", 4, "jobs[0].name")


def test_an_error_that_names_another_file_is_left_alone() -> None:
    other = InputError("bad", source="other.yaml", line=9, field="x")
    assert job_fields().relocate(other) is other
    assert job_fields().get("id").relocate(other) is other


def test_the_error_type_is_carried_down_to_every_value() -> None:
    root = load_yaml("a: {b: [x]}\n", "t.yaml", error_type=TopologyError)
    leaf = root.as_fields(["a"]).get("a").as_fields(["b"]).items("b")[0]
    with pytest.raises(TopologyError) as info:
        leaf.as_int()
    assert_located(info.value, "t.yaml", 1, "a.b[0]")
