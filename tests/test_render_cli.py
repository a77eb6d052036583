"""``kglance render`` on the shipped examples and on broken input, through ``cli.main``.

The examples in ``deploy/examples`` must render without a problem, print no secret, and give a
configuration the sidecar reads; its file backend is built and stores an image.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import pathlib
import sys
from collections.abc import AsyncIterator

import pytest

from kglance import cli
from kglance.drivers import registry
from kglance.operator import names
from kglance.sidecar import config

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "deploy" / "examples"
EXAMPLE_SECRETS = ["EXAMPLEACCESSKEY", "example/secret/key", "example-password", "AQB6gXRh"]

S3_BACKEND = """\
apiVersion: kglance.io/v1alpha1
kind: StoreBackend
metadata: {name: objects, namespace: NS}
spec:
  type: s3
  s3:
    endpoint: https://s3.example.com
    bucket: images
    accessKey: {secretKeyRef: {name: s3-creds, key: accessKey}}
    secretKey: {secretKeyRef: {name: s3-creds, key: secretKey}}
"""


def run(*args: str) -> int:
    return cli.main(["render", *args])


def test_examples_render_without_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("-f", str(EXAMPLES)) == 0
    out, err = capsys.readouterr()
    for section in ("[fast]", "[web]", "[objects]", "[swift]", "[ceph]", "[volumes]"):
        assert section in out
    assert "default_backend = fast" in out
    for secret in EXAMPLE_SECRETS:
        assert secret not in out
    assert "# ---- objects.s3_store_secret_key\n***\n" in out
    assert "(the mirror's CA certificate, PEM)" in out  # a ConfigMap is not secret
    assert err == ""


def test_show_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("-f", str(EXAMPLES), "--show-secrets") == 0
    out = capsys.readouterr().out
    assert "example/secret/key" in out
    assert "[client.glance]\n\tkey = AQB6gXRh" in out  # the bare key became a keyring


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_examples_written_form_a_working_sidecar_config(tmp_path: pathlib.Path) -> None:
    out_dir, volumes = tmp_path / "conf", tmp_path / "volumes"
    args = ["-f", str(EXAMPLES), "-o", str(out_dir), "--volume-root", str(volumes)]
    assert run(*args, "--config-dir", str(out_dir)) == 0
    assert (out_dir / "objects.s3_store_secret_key").read_text() == "example/secret/key"
    assert (out_dir / names.CONFIG_KEY).stat().st_mode & 0o077 == 0
    drivers = registry.Registry()
    service = config.read(str(out_dir / names.CONFIG_KEY), drivers=drivers)
    assert service.warnings == ()
    assert sorted(b.type for b in service.backends) == sorted(
        ["file", "http", "s3", "swift", "rbd", "cinder"]
    )
    for spec in service.backends:  # every backend's options are valid for its driver
        drivers.driver_class(spec.type).Options.model_validate(dict(spec.options))
    file_only = dataclasses.replace(
        service, backends=tuple(b for b in service.backends if b.type == "file")
    )
    built = await config.build(file_only, drivers=drivers)
    try:
        added = await built.get("fast").add("cirros", _chunks(b"bytes"), size=5)
        assert added.location.uri() == f"file://{volumes}/fast/cirros"
    finally:
        await built.aclose()


def _write(tmp_path: pathlib.Path, text: str, name: str = "in.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_problems_go_to_stderr_with_status_1(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = base64.b64encode(b"AK").decode()
    text = (
        S3_BACKEND.replace("NS", "images")
        + f"""\
---
apiVersion: v1
kind: Secret
metadata: {{name: s3-creds, namespace: images}}
data: {{accessKey: {secret}}}
---
apiVersion: kglance.io/v1alpha1
kind: StoreBackend
metadata: {{name: fast, namespace: images}}
spec: {{type: file, file: {{claimName: pvc}}}}
"""
    )
    assert run("-f", _write(tmp_path, text)) == 1
    out, err = capsys.readouterr()
    problem = "SecretsResolved SecretKeyMissing: Secret s3-creds has no key secretKey"
    assert err == f"images/objects: {problem}\n"
    assert "[fast]" in out and "[objects]" not in out


def test_namespaces_are_rendered_apart(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "\n---\n".join(
        [
            S3_BACKEND.replace("NS", "one"),
            S3_BACKEND.replace("NS", "two"),
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s3-creds, namespace: one}\n"
            "stringData: {accessKey: a, secretKey: s}",
        ]
    )
    path = _write(tmp_path, text)
    assert run("-f", path, "-n", "one") == 0
    assert "[objects]" in capsys.readouterr().out
    assert run("-f", path, "-n", "two") == 1
    assert "two/objects: SecretsResolved SecretNotFound" in capsys.readouterr().err
    out_dir = tmp_path / "out"
    assert run("-f", path, "-o", str(out_dir)) == 1
    assert (out_dir / "one" / names.CONFIG_KEY).exists()
    assert not (out_dir / "two").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [unclosed", "not YAML"),
        ("- just\n- a list\n", "not a Kubernetes object"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "no StoreBackend"),
        (
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s3-creds}\ndata: {k: '%%%'}\n",
            "Secret s3-creds key k: data is not base64",
        ),
    ],
)
def test_bad_input_is_status_2(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    assert run("-f", _write(tmp_path, text)) == 2
    assert message in capsys.readouterr().err


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
    assert run("-f", str(tmp_path / "nope.yaml")) == 2
    assert "cannot read" in capsys.readouterr().err


def test_without_pyyaml_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` raise ImportError
    assert run("-f", str(EXAMPLES)) == 2
    assert "kglance[operator]" in capsys.readouterr().err


def test_stdin_and_lists(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = """\
apiVersion: v1
kind: List
items:
- apiVersion: kglance.io/v1alpha1
  kind: StoreBackend
  metadata: {name: fast}
  spec: {type: file, file: {claimName: pvc}}
"""
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert run("-f", "-", "--volume-root", "/srv/volumes") == 0
    out = capsys.readouterr().out
    assert 'filesystem_store_datadir = "/srv/volumes/fast"' in out
    assert "default_backend = fast" in out
