"""The CLI on a data directory on S3 (moto on loopback): index, search, collections
list/info/delete, ``--storage-option``, and FAISS refused with exit code 2."""

from __future__ import annotations

import json

from cli.main import main
from cli_subprocess import plugin_env, run_cli
from repo_paths import SAMPLES
from s3_server import s3, s3_server  # noqa: F401 - fixtures

FILES = [str(SAMPLES / n) for n in ("invoice.pdf", "slide.pdf")]


def _last_json(out: str):
    return json.loads(out.strip().splitlines()[-1])


def _index(uri: str, *extra: str) -> list[str]:
    return ["index", *FILES, "-e", "example/hashing", "--no-ocr", "--workers", "0",
            "--data-dir", uri, "--json", *extra]


def test_index_search_list_info_delete_on_s3(s3, capsys, tmp_path):
    assert main(_index(s3.uri)) == 0
    assert len(_last_json(capsys.readouterr().out)["indexed"]) == 2
    assert main(_index(s3.uri)) == 0  # a re-run skips what is unchanged
    assert len(_last_json(capsys.readouterr().out)["unchanged"]) == 2

    assert main(["search", "IBAN bank transfer", "-k", "1", "--data-dir", s3.uri,
                 "--json"]) == 0
    hit = _last_json(capsys.readouterr().out)
    assert hit["source"].endswith("invoice.pdf") and hit["regions"]

    assert main(["collections", "list", "--data-dir", s3.uri, "--json"]) == 0
    assert _last_json(capsys.readouterr().out) == ["default"]
    assert main(["collections", "info", "--data-dir", s3.uri, "--json"]) == 0
    info = _last_json(capsys.readouterr().out)
    assert info["path"] == f"{s3.uri}/collections/default" and info["pages"] == 2
    assert info["storage"]["bytes"] > 0

    # the real command line, in a subprocess: argv as a shell would pass it
    done = run_cli(plugin_env(tmp_path), "search", "IBAN", "-k", "1", "--data-dir", s3.uri,
                   "--json")
    assert done.returncode == 0, done.stderr.decode()
    assert _last_json(done.stdout.decode())["source"].endswith("invoice.pdf")

    assert main(["collections", "delete", "default", "--yes", "--data-dir", s3.uri]) == 0
    capsys.readouterr()
    assert main(["collections", "list", "--data-dir", s3.uri, "--json"]) == 0
    assert _last_json(capsys.readouterr().out) == []
    assert s3.keys("retriever/collections/default/") == []
    assert main(["search", "IBAN", "--data-dir", s3.uri]) == 4  # not found


def test_storage_options_on_the_command_line(s3, capsys, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # the endpoint now comes from the flags only
    flags = ["--storage-option", f"aws_endpoint={s3.endpoint}",
             "--storage-option", "allow_http=true"]
    assert main(_index(s3.uri, *flags)) == 0
    assert len(_last_json(capsys.readouterr().out)["indexed"]) == 2
    assert main(["collections", "list", "--data-dir", s3.uri, "--json", *flags]) == 0
    assert _last_json(capsys.readouterr().out) == ["default"]
    assert main(["delete", FILES[0], "--data-dir", s3.uri, "--json", *flags]) == 0
    assert _last_json(capsys.readouterr().out)["pages"] == 1
    assert main(["search", "IBAN", "--data-dir", s3.uri, "--storage-option", "oops"]) == 2


def test_faiss_on_a_uri_is_a_usage_error(s3, capsys):
    assert main(_index(s3.uri, "--indexer", "faiss")) == 2
    err = capsys.readouterr().err
    assert "faiss" in err and "object storage" in err
    assert s3.keys() == []


def test_storage_options_without_a_uri_are_refused(tmp_path, capsys):
    assert main(["collections", "list", "--data-dir", str(tmp_path),
                 "--storage-option", "aws_region=eu-west-1"]) == 2
    assert "object storage" in capsys.readouterr().err
