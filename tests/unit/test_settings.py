import pytest

from divescore.settings import MB, Settings, SettingsError, describe, load


def test_defaults_follow_the_design():
    s = load({})
    assert s.max_upload_bytes == 200 * MB
    assert "*" not in s.cors_origins
    assert s.visibility_timeout_seconds > s.function_timeout_seconds
    assert s.max_wait_seconds <= 25
    assert "video/mp4" in s.content_types
    assert s.model_dtype == "float32"  # one score per video whatever the CPU; bfloat16 only when asked for


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"DIVESCORE_MAX_UPLAOD_BYTES": "5"}, "DIVESCORE_MAX_UPLAOD_BYTES: unknown setting"),
        ({"DIVESCORE_WEB_PORT": "eighty"}, "DIVESCORE_WEB_PORT: expected a whole number, got 'eighty'"),
        ({"DIVESCORE_WEB_PORT": "70000"}, "DIVESCORE_WEB_PORT: must be between 1 and 65535"),
        ({"DIVESCORE_FUNCTION_TIMEOUT_SECONDS": "100", "DIVESCORE_VISIBILITY_TIMEOUT_SECONDS": "50"},
         "DIVESCORE_VISIBILITY_TIMEOUT_SECONDS: 50 must be greater than DIVESCORE_FUNCTION_TIMEOUT_SECONDS"),
        ({"DIVESCORE_CORS_ORIGINS": "*"}, "DIVESCORE_CORS_ORIGINS: '*' is not allowed"),
        ({"DIVESCORE_MODEL_DTYPE": "float64"}, "DIVESCORE_MODEL_DTYPE: must be float32 or bfloat16"),
        ({"DIVESCORE_MODEL_DTYPE": "auto"}, "DIVESCORE_MODEL_DTYPE: must be float32 or bfloat16"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(environ, names):
    with pytest.raises(SettingsError) as err:
        load(environ)
    assert str(err.value).startswith(names)
    assert "\n" not in str(err.value)


def test_values_are_parsed_and_round_trip_through_the_environment():
    s = load({"DIVESCORE_CONTENT_TYPES": "video/mp4, video/webm", "DIVESCORE_RUNTIMES": " 3 "})
    assert s.content_types == ("video/mp4", "video/webm")
    assert s.runtimes == 3
    assert load(s.to_env()) == s


def test_upload_keys_never_depend_on_anything_but_the_job_id():
    s = Settings()
    assert s.upload_key("abc") == "uploads/abc/video"
    assert s.job_id_from_key("uploads/abc/video") == "abc"
    for key in ("uploads/abc", "uploads/abc/video/x", "results/abc/video", "uploads//video", "abc/video"):
        assert s.job_id_from_key(key) is None


def test_every_setting_is_described():
    rows = describe()
    assert all(help_text for _, _, help_text in rows)
    assert len({name for name, _, _ in rows}) == len(rows)


def test_docs_list_every_setting_as_the_code_defines_it(capsys):
    import argparse

    from client.settings_command import add_arguments, run
    from tests.support.helpers import ROOT

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    run(parser.parse_args(["--markdown"]))
    table = capsys.readouterr().out
    docs = (ROOT / "docs" / "settings.md").read_text()
    assert table in docs, "docs/settings.md is stale: regenerate it with `divescore settings --markdown`"


@pytest.mark.parametrize("program", [
    ["standins.bootstrap"], ["standins.dispatcher"], ["standins.serving", "jobs_api"], ["standins.webpage"],
    ["services.sweep"], ["services.notifier"], ["devstack.iam.policies", "score"],
])
def test_every_program_stops_on_a_bad_setting_with_one_line_and_status_2(program):
    import os
    import subprocess
    import sys

    env = {**os.environ, "DIVESCORE_WEB_PROT": "8000"}
    done = subprocess.run([sys.executable, "-m", *program], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done
    assert done.stderr.strip().splitlines() == ["divescore: DIVESCORE_WEB_PROT: unknown setting (see docs/settings.md "
                                                "for the list)"], done.stderr
