# ruff: noqa: E501  (the expectation table keeps one case per line)
"""Our corpus of broken rules files: each gives exactly one error that names
the file, line, column and item, with Falco's code.

The table is the expectation (written by reading each file): file stem, code,
line, column, item type, item name, message prefix.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from falcopy.cli import main
from falcopy.engine import load_rules_files

BROKEN = Path(__file__).parent / "broken"

CASES: list[tuple[str, str, int, int, str, str, str]] = [
    ("append_list_dangling", "LOAD_ERR_VALIDATE", 1, 9, "list", "ghost", "List has 'append' key or an append override but no list by t"),
    ("argument_on_plain_field", "LOAD_ERR_COMPILE_CONDITION", 3, 32, "rule", "r1", "field 'proc.name' does not accept an argument"),
    ("bad_hex_bcontains", "LOAD_ERR_COMPILE_CONDITION", 3, 54, "rule", "r1", "'XYZ' is not a valid hex string: odd number of digits"),
    ("bad_index_argument", "LOAD_ERR_COMPILE_CONDITION", 3, 32, "rule", "r1", "invalid index 'abc' for field 'proc.aname': expected a numbe"),
    ("bad_ip_network", "LOAD_ERR_COMPILE_CONDITION", 3, 44, "rule", "r1", "'10.0.0.0/99' is not a valid IP network"),
    ("bad_operator", "LOAD_ERR_COMPILE_CONDITION", 3, 42, "rule", "r1", "expected a valid check operator: one of 'exists', '<=', '<',"),
    ("bad_priority", "LOAD_ERR_YAML_VALIDATE", 5, 13, "rule", "r1", 'Invalid priority'),
    ("bad_regex", "LOAD_ERR_COMPILE_CONDITION", 3, 48, "rule", "r1", "invalid regular expression '(unclosed': missing ): (unclosed"),
    ("condition_not_scalar", "LOAD_ERR_YAML_VALIDATE", 3, 14, "rule", "r1", "Can't decode YAML scalar value"),
    ("dangling_and", "LOAD_ERR_COMPILE_CONDITION", 3, 31, "rule", "r1", "expected blank or '(' after 'and'"),
    ("depth_limit", "LOAD_ERR_COMPILE_CONDITION", 3, 214, "rule", "r1", 'exceeded max depth limit of 1000'),
    ("empty_condition", "LOAD_ERR_YAML_VALIDATE", 3, 14, "rule", "r1", "Mapping for key 'condition' is empty"),
    ("enabled_no_previous", "LOAD_ERR_VALIDATE", 1, 9, "rule", "ghost", "Rule has 'enabled' key but no rule by that name already exis"),
    ("enabled_not_bool", "LOAD_ERR_YAML_VALIDATE", 6, 12, "rule", "r1", "Can't decode YAML scalar value"),
    ("engine_version_not_number", "LOAD_ERR_YAML_VALIDATE", 1, 28, "required_engine_version", "", "Can't decode YAML scalar value"),
    ("engine_version_too_new", "LOAD_ERR_VALIDATE", 1, 28, "required_engine_version", "", 'Rules require engine version 0.99.0, but engine version is 0'),
    ("exception_append_fields", "LOAD_ERR_VALIDATE", 12, 7, "exception", "ex1", 'Can not append exception fields to existing exception, only '),
    ("exception_comps_length", "LOAD_ERR_VALIDATE", 7, 7, "exception", "ex1", 'Fields and comps lists must have equal length'),
    ("exception_no_name", "LOAD_ERR_YAML_VALIDATE", 7, 7, "exception", "", "Item has no mapping for key 'name'"),
    ("exception_single_field_comp", "LOAD_ERR_VALIDATE", 7, 7, "exception", "ex1", 'When fields is a single value, comps must be one of (in, pma'),
    ("exception_unknown_comp", "LOAD_ERR_VALIDATE", 7, 7, "exception", "ex1", "'like' is not a supported comparison operator"),
    ("exception_unknown_field", "LOAD_ERR_VALIDATE", 7, 7, "exception", "ex1", "'proc.nofield' is not a supported filter field"),
    ("exception_values_length", "LOAD_ERR_VALIDATE", 7, 7, "exception", "ex1", 'Fields and values lists must have equal length'),
    ("invalid_output_token", "LOAD_ERR_COMPILE_OUTPUT", 4, 14, "rule", "r1", 'invalid formatting token notafield'),
    ("item_not_object", "LOAD_ERR_YAML_VALIDATE", 3, 3, "rules content item", "", 'Unexpected element type. Each element should be a yaml assoc'),
    ("list_items_not_sequence", "LOAD_ERR_YAML_VALIDATE", 2, 10, "list", "l", "Can't decode YAML sequence value"),
    ("list_op_without_list", "LOAD_ERR_COMPILE_CONDITION", 3, 44, "rule", "r1", 'expected a list, an identifier, or a field with a valid tran'),
    ("list_without_items", "LOAD_ERR_YAML_VALIDATE", 1, 3, "list", "l", "Item has no mapping for key 'items'"),
    ("macro_reference_loop", "LOAD_ERR_VALIDATE", 4, 14, "macro", "a", "reference loop in macro 'a'"),
    ("macro_used_before_defined", "LOAD_ERR_VALIDATE", 2, 14, "macro", "a", "Undefined macro 'b' used in filter."),
    ("macro_without_condition", "LOAD_ERR_YAML_VALIDATE", 1, 3, "macro", "m", "Item has no mapping for key 'condition'"),
    ("missing_desc", "LOAD_ERR_YAML_VALIDATE", 1, 3, "rule", "r1", "Item has no mapping for key 'desc'"),
    ("missing_operand", "LOAD_ERR_COMPILE_CONDITION", 3, 43, "rule", "r1", 'expected a string value or a field with a valid transformer:'),
    ("missing_output", "LOAD_ERR_YAML_VALIDATE", 1, 3, "rule", "r1", "Item has no mapping for key 'output'"),
    ("missing_priority", "LOAD_ERR_YAML_VALIDATE", 1, 3, "rule", "r1", "Item has no mapping for key 'priority'"),
    ("missing_required_argument", "LOAD_ERR_COMPILE_CONDITION", 3, 32, "rule", "r1", "field 'k8s.pod.label' requires an argument"),
    ("missing_rule_name", "LOAD_ERR_YAML_VALIDATE", 2, 3, "rule", "", "Mapping for key 'rule' is empty"),
    ("not_a_bool", "LOAD_ERR_COMPILE_CONDITION", 3, 51, "rule", "r1", "'maybe' is not a valid boolean (true or false)"),
    ("not_a_number", "LOAD_ERR_COMPILE_CONDITION", 3, 43, "rule", "r1", "'abc' is not a valid number"),
    ("not_array", "LOAD_ERR_YAML_VALIDATE", 1, 1, "rules content", "", 'Rules content is not yaml array of objects'),
    ("override_key_not_defined", "LOAD_ERR_VALIDATE", 10, 5, "overrides", "r1", "An append override for 'condition' was specified but 'condit"),
    ("override_no_previous", "LOAD_ERR_VALIDATE", 1, 9, "rule", "ghost", "Rule has 'append' key or an append override but no rule by t"),
    ("override_not_appendable", "LOAD_ERR_VALIDATE", 9, 5, "overrides", "r1", "Key 'priority' cannot be appended to, use 'replace' instead"),
    ("override_not_replaceable", "LOAD_ERR_VALIDATE", 6, 12, "overrides", "l", "Invalid override operation for key 'items': must be either '"),
    ("override_replace_no_previous", "LOAD_ERR_VALIDATE", 1, 10, "macro", "ghost", 'An replace to a macro was requested but no macro by that nam'),
    ("override_unexpected_key", "LOAD_ERR_VALIDATE", 8, 3, "overrides", "r1", "Unexpected key 'tags': no corresponding entry under 'overrid"),
    ("override_with_append", "LOAD_ERR_VALIDATE", 10, 5, "overrides", "r1", "Keys 'override' and 'append: true' cannot be used together. "),
    ("plugin_entry_without_version", "LOAD_ERR_YAML_VALIDATE", 2, 5, "required plugin versions entry", "json", "Item has no mapping for key 'version'"),
    ("plugin_unknown", "LOAD_ERR_VALIDATE", 2, 5, "required plugin versions entry", "cloudtrail", 'Plugin requirement not satisfied, must load one of: cloudtra'),
    ("plugin_version_unsatisfied", "LOAD_ERR_VALIDATE", 2, 5, "required plugin versions entry", "k8saudit", 'Plugin requirement not satisfied, must load one of: k8saudit'),
    ("string_op_on_number", "LOAD_ERR_COMPILE_CONDITION", 3, 32, "rule", "r1", "operator 'contains' is not supported by field 'proc.pid' of "),
    ("tags_not_list", "LOAD_ERR_YAML_VALIDATE", 6, 9, "rule", "r1", "Can't decode YAML sequence value"),
    ("transformer_on_evttype", "LOAD_ERR_COMPILE_CONDITION", 3, 25, "rule", "r1", 'evt.type cannot be compared with a transformer or val()'),
    ("unbalanced_close_paren", "LOAD_ERR_COMPILE_CONDITION", 3, 45, "rule", "r1", "unexpected token after 'cat', expecting 'or', 'and'"),
    ("unbalanced_open_paren", "LOAD_ERR_COMPILE_CONDITION", 3, 46, "rule", "r1", "expected a ')' token"),
    ("unknown_event_type", "LOAD_ERR_COMPILE_CONDITION", 3, 23, "rule", "r1", 'unknown event type opne'),
    ("unknown_event_type_in_list", "LOAD_ERR_COMPILE_CONDITION", 3, 26, "rule", "r1", 'unknown event type exceve'),
    ("unknown_field", "LOAD_ERR_COMPILE_CONDITION", 3, 32, "rule", "r1", 'filter_check called with nonexistent field proc.nobody'),
    ("unknown_field_in_output", "LOAD_ERR_COMPILE_OUTPUT", 4, 14, "rule", "r1", 'invalid formatting token proc.nobody'),
    ("unknown_macro", "LOAD_ERR_VALIDATE", 3, 32, "rule", "r1", "Undefined macro 'is_cat' used in filter."),
    ("unknown_transformer", "LOAD_ERR_COMPILE_CONDITION", 3, 37, "rule", "r1", "unexpected token after 'lower', expecting 'or', 'and'"),
    ("yaml_bad_indent", "LOAD_ERR_YAML_PARSE", 3, 4, "rules content", "", 'yaml: error at line 3, column 4: expected <block end>, but f'),
    ("yaml_tab_indent", "LOAD_ERR_YAML_PARSE", 2, 1, "rules content", "", "yaml: error at line 2, column 1: found character '\\t' that c"),
    ("yaml_unclosed_flow", "LOAD_ERR_YAML_PARSE", 3, 7, "rules content", "", "yaml: error at line 3, column 7: expected ',' or ']', but go"),
    ("yaml_unclosed_quote", "LOAD_ERR_YAML_PARSE", 4, 1, "rules content", "", 'yaml: error at line 4, column 1: found unexpected end of str'),
]


def test_corpus_is_complete() -> None:
    assert len(CASES) >= 40
    assert {c[0] for c in CASES} == {p.stem for p in BROKEN.glob("*.yaml")}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_broken_file_gives_one_clear_error(case: tuple[str, str, int, int, str, str, str]) -> None:
    stem, code, line, column, item_type, item_name, message = case
    path = BROKEN / f"{stem}.yaml"
    result = load_rules_files([path])
    assert not result.ok and result.ruleset is None
    assert len(result.errors) == 1, [str(e) for e in result.errors]
    err = result.errors[0]
    assert (err.code, err.line, err.column, err.item_type, err.item_name) == \
        (code, line, column, item_type, item_name), str(err)
    assert err.message.startswith(message)
    assert err.file == str(path)
    text = str(err)
    assert text.startswith(f"{path}:{line}:{column}: error {code}: ")
    if item_name:
        assert f"'{item_name}'" in text
    # the snippet is the offending line of the file
    lines = path.read_text().splitlines()
    assert err.snippet == (lines[line - 1] if line <= len(lines) else "")  # end of file: empty


def test_cli_validate_reports_the_error_and_fails() -> None:
    path = BROKEN / "unknown_field.yaml"
    res = CliRunner().invoke(main, ["validate", str(path)])
    assert res.exit_code == 1
    assert f"{path}:3:32: error LOAD_ERR_COMPILE_CONDITION: filter_check called with nonexistent field " \
           "proc.nobody (rule 'r1')" in res.output
    assert "invalid: 1 rules, 0 macros, 0 lists; 1 errors" in res.output
