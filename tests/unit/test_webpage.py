"""The web page's server: static files, /config.json from the settings, /healthz; and the
page's code holds no address of its own."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import requests

from divescore import settings as settings_module
from standins.webpage import WEB_DIR, create_app
from tests.support.helpers import free_port, wait_until

SETTINGS = settings_module.load(
    {},
    presign_api_url="http://presign.test:8101/",
    score_api_url="http://score.test:8102",
    max_upload_bytes=123_000_000,
    content_types=("video/mp4", "video/webm"),
    max_wait_seconds=12,
)


@pytest.fixture
def client():
    return create_app(SETTINGS).test_client()


def test_config_carries_the_api_addresses_and_limits_from_the_settings(client):
    response = client.get("/config.json")
    assert response.status_code == 200
    assert response.get_json() == {
        "presign_api_url": "http://presign.test:8101",
        "score_api_url": "http://score.test:8102",
        "max_upload_bytes": 123_000_000,
        "content_types": ["video/mp4", "video/webm"],
        "long_poll_seconds": 12,  # never longer than the service allows
        "function_timeout_seconds": SETTINGS.function_timeout_seconds,
        "max_receive_count": SETTINGS.max_receive_count,
    }


def test_the_page_and_its_modules_are_served_with_a_strict_script_policy(client):
    page = client.get("/")
    assert page.status_code == 200
    assert '<script type="module" src="app.js">' in page.get_data(as_text=True)
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    for module in ("app.js", "api.js", "upload.js", "format.js", "meter.js", "chart.js", "store.js", "ranking.js"):
        response = client.get(f"/{module}")
        assert response.status_code == 200, module
        assert response.mimetype == "text/javascript", module  # browsers refuse modules of other types
    assert client.get("/style.css").mimetype == "text/css"


def test_unknown_files_and_paths_outside_the_folder_are_not_found(client):
    assert client.get("/nothing.js").status_code == 404
    assert client.get("/../pyproject.toml").status_code == 404
    assert client.get("/%2e%2e/pyproject.toml").status_code == 404


def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_the_page_code_names_no_address():
    """Where the APIs are comes from /config.json only."""
    for path in sorted(WEB_DIR.iterdir()):
        text = path.read_text()
        addresses = [a for a in re.findall(r"\b(?:https?|wss?)://[^\s\"'`)]+", text) if "www.w3.org" not in a]
        assert addresses == [], f"{path.name} names {addresses}"
        assert "127.0.0.1" not in text and "localhost" not in text, path.name


def test_every_module_the_page_imports_exists():
    for path in WEB_DIR.glob("*.js"):
        for name in re.findall(r"""from\s+["']\./([\w.-]+)["']""", path.read_text()):
            assert (WEB_DIR / name).is_file(), f"{path.name} imports {name}"


def test_python_m_divescore_webpage_serves_the_page_with_settings_from_the_environment(tmp_path):
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "DIVESCORE_WEB_PORT": str(port),
        "DIVESCORE_PRESIGN_API_URL": "http://presign.example",
        "DIVESCORE_SCORE_API_URL": "http://score.example",
        "DIVESCORE_MAX_UPLOAD_BYTES": "5000000",
    }
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "webpage.log", "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "standins.webpage"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(lambda: _answers(f"{base}/healthz") or process.poll() is not None, 30, what="the web page")
            assert process.poll() is None, (tmp_path / "webpage.log").read_text()
            config = requests.get(f"{base}/config.json", timeout=5).json()
            assert config["presign_api_url"] == "http://presign.example"
            assert config["score_api_url"] == "http://score.example"
            assert config["max_upload_bytes"] == 5_000_000
            assert "Choose videos" in requests.get(base, timeout=5).text
        finally:
            process.terminate()
            process.wait(10)


def test_a_bad_setting_stops_the_server_with_its_name():
    result = subprocess.run([sys.executable, "-m", "standins.webpage"], env={"DIVESCORE_WEB_PORT": "web"},
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "DIVESCORE_WEB_PORT" in result.stderr


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False
