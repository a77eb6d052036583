"""Reading glance_store's multi-backend configuration.

Matrix: the seed's own example (file and http parts), oslo's INI syntax (quotes, repeated keys,
continuation lines, ``key: value``, comments, section case), Glance's own sections ignored,
``[backend_defaults]`` fallback, the typo warning, start-up errors that name section and option
(unknown type, bad value, missing value, enabled/default backend problems), and secrets read
from files (``X_file`` and ``[kglance] secrets_dir``). Two cases run the real server: a bad
file stops it with exit status 2, a typo only warns.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kglance.drivers import registry
from kglance.sidecar import config, ini
from tests.sidecar import harness

DRIVERS = registry.Registry.discover()


def read(text: str, tmp_path: Path) -> config.ServiceConfig:
    path = tmp_path / "glance-api.conf"
    path.write_text(text)
    return config.read(str(path), drivers=DRIVERS)


def seed_example(datadir: Path) -> str:
    """Seed 002's example without its rbd store (no rbd driver yet), datadir redirected."""
    return f"""[DEFAULT]
enabled_backends = store_two:file,store_three:http

[store_two]
store_description = "Human-readable description of this store"
filesystem_store_datadir = {datadir}

[store_three]
store_description = "A read-only store"
https_ca_certificates_file = /opt/stack/certs/gs.cert

[glance_store]
default_backend = store_two
"""


def test_seed_example(tmp_path: Path) -> None:
    loaded = read(seed_example(tmp_path / "store_two"), tmp_path)
    assert loaded.default_backend == "store_two"
    assert loaded.warnings == ()
    two, three = loaded.backends
    assert (two.id, two.type, two.weight) == ("store_two", "file", 0)
    assert two.description == "Human-readable description of this store"
    assert two.options == {"filesystem_store_datadir": str(tmp_path / "store_two")}
    assert (three.id, three.type, three.description) == ("store_three", "http", "A read-only store")
    assert three.options == {"https_ca_certificates_file": "/opt/stack/certs/gs.cert"}


async def test_seed_example_builds(tmp_path: Path) -> None:
    text = seed_example(tmp_path / "store_two").replace(
        "https_ca_certificates_file = /opt/stack/certs/gs.cert", "https_insecure = false"
    )
    built = await config.build(read(text, tmp_path), drivers=DRIVERS)
    try:
        assert [b.id for b in built] == ["store_two", "store_three"]
        assert built.get(None).id == "store_two"
        assert (tmp_path / "store_two").is_dir()
    finally:
        await built.aclose()


def test_oslo_syntax(tmp_path: Path) -> None:
    text = f"""
# a comment
[DEFAULT]
enabled_backends = Multi:file
; another comment
[MULTI]
store_description: 'single quotes'
filesystem_store_datadirs = {tmp_path}/a:100
filesystem_store_datadirs = {tmp_path}/b
    {tmp_path}/c:5
weight = 7
[glance_store]
default_backend = Multi
"""
    (backend,) = read(text, tmp_path).backends
    assert backend.id == "Multi"  # the id keeps its case; its section is found case-blind
    assert backend.description == "single quotes"
    assert backend.weight == 7
    assert backend.options == {
        "filesystem_store_datadirs": [f"{tmp_path}/a:100", f"{tmp_path}/b", f"{tmp_path}/c:5"]
    }


def test_ini_reader_keeps_repeated_values_and_rejects_garbage() -> None:
    parsed = ini.parse(["[s]", "k = 1", "k = 2", "  more", "", "q = 'x'"])
    assert parsed == {"s": {"k": ["1", "2\nmore"], "q": ["x"]}}
    for lines in (["k = v"], ["[s]", "no assignment"], ["  indented"], ["[]"]):
        with pytest.raises(ini.IniError):
            ini.parse(lines, source="x.conf")


def test_glance_options_are_ignored_and_backend_defaults_apply(tmp_path: Path) -> None:
    text = f"""[DEFAULT]
enabled_backends = a:file, b:file
debug = true
workers = 4
[glance_store]
default_backend = a
stores = file,http
[database]
connection = sqlite://
[keystone_authtoken]
password = secret
[backend_defaults]
filesystem_store_chunk_size = 4096
https_insecure = true
[a]
filesystem_store_datadir = {tmp_path}/a
[b]
filesystem_store_datadir = {tmp_path}/b
filesystem_store_chunk_size = 8192
"""
    loaded = read(text, tmp_path)
    assert loaded.warnings == ()
    a, b = loaded.backends
    assert a.options["filesystem_store_chunk_size"] == "4096"
    assert b.options["filesystem_store_chunk_size"] == "8192"
    assert "https_insecure" not in a.options  # another type's option in [backend_defaults]


def test_unknown_option_in_backend_section_warns(tmp_path: Path) -> None:
    text = seed_example(tmp_path / "d").replace(
        "[store_two]\n", "[store_two]\nfilesystem_store_datadri = /typo\nrbd_store_pool = x\n"
    )
    loaded = read(text, tmp_path)
    assert len(loaded.warnings) == 2
    assert "[store_two] filesystem_store_datadri" in loaded.warnings[0]
    assert "[store_two] rbd_store_pool" in loaded.warnings[1]
    assert "filesystem_store_datadri" not in loaded.backends[0].options


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[DEFAULT]\n[glance_store]\ndefault_backend = a\n", "[DEFAULT] enabled_backends"),
        ("[DEFAULT]\nenabled_backends = a\n", "[DEFAULT] enabled_backends"),
        ("[DEFAULT]\nenabled_backends = a:file,a:file\n", "[DEFAULT] enabled_backends"),
        ("[DEFAULT]\nenabled_backends = a:ftp\n[glance_store]\ndefault_backend = a\n", "'ftp'"),
        ("[DEFAULT]\nenabled_backends = a:file\n", "[glance_store] default_backend"),
        (
            "[DEFAULT]\nenabled_backends = a:file\n[glance_store]\ndefault_backend = b\n",
            "[glance_store] default_backend",
        ),
        (
            "[DEFAULT]\nenabled_backends = a:file\n[glance_store]\ndefault_backend = a\n"
            "[a]\nweight = heavy\n",
            "[a] weight",
        ),
    ],
    ids=["no-backends", "no-type", "twice", "unknown-type", "no-default", "bad-default", "weight"],
)
def test_errors_name_section_and_option(tmp_path: Path, text: str, names: str) -> None:
    with pytest.raises(config.ConfigError) as caught:
        read(text, tmp_path)
    assert names in caught.value.message
    assert str(tmp_path / "glance-api.conf") in caught.value.message


@pytest.mark.parametrize(
    ("option", "names"),
    [
        ("filesystem_store_chunk_size = lots", "[a] filesystem_store_chunk_size"),
        ("filesystem_store_chunk_size = 0", "[a] filesystem_store_chunk_size"),
        ("filesystem_thin_provisioning = maybe", "[a] filesystem_thin_provisioning"),
        ("filesystem_store_datadir =", "filesystem_store_datadir"),
    ],
    ids=["not-int", "below-min", "not-bool", "missing"],
)
async def test_bad_values_fail_at_build_naming_section_and_option(
    tmp_path: Path, option: str, names: str
) -> None:
    text = "[DEFAULT]\nenabled_backends = a:file\n[glance_store]\ndefault_backend = a\n"
    text += f"[a]\n{option}\n"
    if "datadir" not in option:
        text += f"filesystem_store_datadir = {tmp_path}/a\n"
    with pytest.raises(config.ConfigError) as caught:
        await config.build(read(text, tmp_path), drivers=DRIVERS)
    assert names in caught.value.message


def test_secret_from_file(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "datadir").write_text(f"{tmp_path}/from-secret\n")
    text = seed_example(tmp_path / "unused").replace(
        f"filesystem_store_datadir = {tmp_path / 'unused'}",
        "filesystem_store_datadir_file = secrets/datadir",
    )
    loaded = read(text, tmp_path)
    assert loaded.backends[0].options["filesystem_store_datadir"] == f"{tmp_path}/from-secret"
    assert str(secrets / "datadir") in loaded.watched
    assert "from-secret" not in repr(loaded)  # option values stay out of reprs


def test_secret_given_twice_or_missing_is_an_error(tmp_path: Path) -> None:
    base = seed_example(tmp_path / "d")
    twice = base.replace("[store_two]\n", "[store_two]\nfilesystem_store_datadir_file = x\n")
    with pytest.raises(config.ConfigError, match=r"\[store_two\] filesystem_store_datadir_file"):
        read(twice, tmp_path)
    missing = base.replace(
        f"filesystem_store_datadir = {tmp_path / 'd'}", "filesystem_store_datadir_file = nope"
    )
    with pytest.raises(config.ConfigError, match="cannot read"):
        read(missing, tmp_path)


def test_secrets_dir(tmp_path: Path) -> None:
    secret = tmp_path / "secrets" / "store_three"
    secret.mkdir(parents=True)
    (secret / "https_insecure").write_text("true\n")
    (secret / "not_an_option").write_text("ignored")
    text = seed_example(tmp_path / "d") + "[kglance]\nsecrets_dir = secrets\n"
    loaded = read(text, tmp_path)
    assert loaded.backends[1].options["https_insecure"] == "true"
    assert str(secret) in loaded.watched and str(secret / "https_insecure") in loaded.watched


def test_embedded_default(tmp_path: Path) -> None:
    loaded = config.parse(
        config.embedded_default(str(tmp_path)), source="<embedded>", drivers=DRIVERS
    )
    (backend,) = loaded.backends
    assert (backend.id, backend.type, loaded.default_backend) == ("local", "file", "local")
    assert backend.options == {"filesystem_store_datadir": str(tmp_path)}


def test_server_refuses_a_bad_config_naming_section_and_option(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text(
        "[DEFAULT]\nenabled_backends = a:file\n[glance_store]\ndefault_backend = a\n"
        f"[a]\nfilesystem_store_datadir = {tmp_path}\nfilesystem_store_chunk_size = big\n"
    )
    socket_path = tmp_path / "s.sock"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kglance.sidecar",
            "--config",
            str(conf),
            "--socket",
            str(socket_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "[a] filesystem_store_chunk_size" in result.stderr
    assert not socket_path.exists()


def test_server_warns_about_a_typo_and_runs(tmp_path: Path) -> None:
    text = harness.file_backends_config({"a": tmp_path / "a"}, default="a")
    conf = harness.write_config(tmp_path / "typo.conf", text + "filesystem_store_chunk_sise = 1\n")
    with harness.running(harness.Sidecar(tmp_path, config=conf)) as sidecar:
        warnings = [r for r in sidecar.log_records() if r.get("event") == "config_warning"]
    assert len(warnings) == 1
    assert "[a] filesystem_store_chunk_sise" in warnings[0]["message"]
