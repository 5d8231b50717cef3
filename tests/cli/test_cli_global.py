"""Across the commands: output modes (--table, --json), --version, the demo, and the
global options from flags or the environment against an emulator over real HTTP.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import CLI, error_line

# -- output modes ---------------------------------------------------------------------------------


def test_tables_with_table_flag(cli: CLI) -> None:
    batch_id = cli.create()
    for args, expected in [
        (["authorities", "-b"], "TRISA Profile"),
        (["licenses"], "ordered"),
        (["profiles"], "Sectigo"),
        (["profiles", "-i", "42"], "keyAlgorithmInfo"),
        (["profiles", "-i", "42", "-p"], "pkcs12Password"),
        (["organization"], "Sectigo IoT Emulator"),
        (["batches", "-i", str(batch_id)], "READY_FOR_DOWNLOAD"),
        (["batches", "-i", str(batch_id), "-I"], "success"),
        (["find", "-n", "example.com"], "example.com"),
    ]:
        result = cli.ok("--table", *args)
        assert expected in result.stdout, args
        assert not result.stdout.lstrip().startswith(("{", "[")), args


def test_json_flag_for_text_outputs(cli: CLI) -> None:
    batch_id = cli.create()
    assert cli.json("--json", "batches", "-i", str(batch_id), "-s") == {
        "batchId": batch_id,
        "status": "READY_FOR_DOWNLOAD",
    }
    assert cli.json("--json", "download", "-i", str(batch_id), "-o", ".") == {
        "batchId": batch_id,
        "path": f"{batch_id}.zip",
    }


def test_version_and_no_arguments(cli: CLI) -> None:
    from sectigo_iot import __version__

    assert cli("--version").stdout == f"sectigo version {__version__}\n"
    bare = cli()
    assert bare.exit_code == 2
    assert "Usage: sectigo" in bare.stdout


# -- the demo -------------------------------------------------------------------------------------


def test_demo(cli: CLI) -> None:
    result = cli("demo")
    assert result.exit_code == 0, result.stderr
    for step in (
        "1. authorities",
        "2. create",
        "3. wait",
        "4. download",
        "5. PEM",
        "6. inspect",
        "7. find",
        "8. revoke",
    ):
        assert step in result.stdout
    assert "is now REVOKED" in result.stdout
    assert result.stderr.count("pkcs12 password: ") == 1


def test_demo_json_and_dir(cli: CLI) -> None:
    summary = cli.json("--json", "demo", "--dir", "kept")
    assert summary["revoked"][0]["status"] == "REVOKED"
    assert Path(summary["pem"]["key"]).is_file()


# -- global options from flags or the environment, over real HTTP ---------------------------------


def test_testing_environment_fills_in_the_mock_credentials(cli: CLI, served: str) -> None:
    result = cli("-E", "testing", "-e", served, "licenses")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"ordered": 10, "issued": 0}


def test_environment_variables(cli: CLI, served: str) -> None:
    env = {
        "SECTIGO_ENDPOINT": served,
        "SECTIGO_USERNAME": "tester",
        "SECTIGO_PASSWORD": "supersecretsquirrel",
    }
    assert cli("authorities", env=env).exit_code == 0
    refused = cli("-E", "production", "authorities", env=env)
    assert refused.exit_code == 2


def test_connection_refused_exit_1(cli: CLI) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = cli("-u", "tester", "-p", "pw", "-e", f"http://127.0.0.1:{port}", "licenses")
    assert result.exit_code == 1
    assert error_line(result).startswith("error: ")
