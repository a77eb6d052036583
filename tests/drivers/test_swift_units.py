"""The swift driver's pure parts, without a server: options and their glance units, the
accounts file, container names, location ownership, Keystone v3 parameters, ACL headers and
the token cache's expire-soon rule.

Keystone cannot run here, so v3 is covered by the arguments the driver gives keystoneauth1 and
by the error it raises when Keystone is unreachable; auth v1 runs against the real Swift in
``test_swift.py``.
"""

from __future__ import annotations

import logging
import pathlib
import textwrap

import pydantic
import pytest

from kglance.drivers import errors, locations, registry
from kglance.drivers.swift import accounts, auth, get_container_name, naming
from kglance.drivers.swift.driver import acl_headers
from kglance.drivers.swift.locating import Locator
from kglance.drivers.swift.options import GLANCE_MB, SwiftOptions

IMAGE = "fdae39a1-bac5-4238-aba4-69bcc726e848"
AUTH = "https://keystone.example.com:5000/v3"
BASE = {
    "swift_store_auth_address": AUTH,
    "swift_store_user": "service:glance",
    "swift_store_key": "s3cr3t-key",
}


def options(**extra: object) -> SwiftOptions:
    return SwiftOptions.model_validate({**BASE, **extra})


def write(path: pathlib.Path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


# ---------------------------------------------------------------------- options


def test_glance_megabytes_are_1024000_bytes() -> None:
    opts = options()
    assert GLANCE_MB == 1_024_000
    assert opts.large_object_bytes == 5120 * 1_024_000
    assert opts.segment_bytes == 200 * 1_024_000
    small = options(swift_store_large_object_size="3", swift_store_large_object_chunk_size="2")
    assert (small.large_object_bytes, small.segment_bytes) == (3_072_000, 2_048_000)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a, b,c", ("a", "b", "c")),
        (["a,b", "c"], ("a", "b", "c")),
        ("", ()),
        (["x"], ("x",)),
    ],
)
def test_admin_tenants_are_an_oslo_list(raw: object, expected: tuple[str, ...]) -> None:
    assert options(swift_store_admin_tenants=raw).swift_store_admin_tenants == expected


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"swift_store_multiple_containers_seed": 33}, "swift_store_multiple_containers_seed"),
        ({"swift_store_multiple_containers_seed": -1}, "swift_store_multiple_containers_seed"),
        ({"swift_store_container": " "}, "swift_store_container"),
        ({"swift_store_container": "a/b"}, "swift_store_container"),
        ({"swift_store_endpoint_type": "publicurl"}, "swift_store_endpoint_type"),
        ({"swift_store_auth_version": "2"}, "swift_store_auth_version"),
        ({"swift_store_endpoint": "ftp://x"}, "swift_store_endpoint"),
        (
            {"swift_store_multi_tenant": True, "swift_store_config_file": "/etc/glance/s.conf"},
            "mutually exclusive",
        ),
        ({"swift_store_large_object_size": 0}, "swift_store_large_object_size"),
        ({"no_such_option": 1}, "no_such_option"),
    ],
)
def test_bad_options_fail_at_build_without_showing_secrets(
    options: dict[str, object], problem: str
) -> None:
    with pytest.raises(errors.ConfigurationError) as caught:
        registry.Registry().build("swift", {**BASE, **options}, backend_id="sw")
    assert problem in caught.value.message
    assert "s3cr3t-key" not in str(caught.value)
    assert caught.value.__cause__ is None  # pydantic's error would repeat the inputs


def test_secrets_never_show() -> None:
    opts = options(swift_store_application_credential_secret="app-secret")
    shown = f"{opts!r} {opts} {opts.model_dump()}"
    assert "s3cr3t-key" not in shown
    assert "app-secret" not in shown
    account = accounts.from_options(opts)
    assert "s3cr3t-key" not in repr(account)
    assert "glance" not in repr(account)  # the user too, as glance marks it secret


@pytest.mark.parametrize(("raw", "expected"), [("1", "1"), ("v1", "1"), ("1.0", "1"), (3, "3")])
def test_auth_versions(raw: object, expected: str) -> None:
    assert options(swift_store_auth_version=raw).swift_store_auth_version == expected


def test_unused_glance_options_are_accepted() -> None:
    opts = options(
        swift_store_use_trusts=False,
        swift_buffer_on_upload=True,
        swift_upload_buffer_dir="/tmp",
        swift_store_ssl_compression=False,
        swift_store_expire_soon_interval=30,
    )
    assert opts.swift_store_expire_soon_interval == 30


# ---------------------------------------------------------------------- containers


@pytest.mark.parametrize(
    ("seed", "expected"),
    [
        (0, "glance"),
        (1, "glance_f"),
        (3, "glance_fda"),
        (10, "glance_fdae39a1-ba"),
        (32, f"glance_{IMAGE}"),
        (13, "glance_fdae39a1-bac5-"),  # glance's formula: dashes in the first N do not count
    ],
)
def test_container_seeds_as_glance(seed: int, expected: str) -> None:
    assert get_container_name(IMAGE, "glance", seed) == expected


def test_container_seed_lower_cases_the_id() -> None:
    assert get_container_name("3A1B0000-0000", "images", 3) == "images_3a1"


def test_seed_out_of_range() -> None:
    with pytest.raises(ValueError):
        get_container_name(IMAGE, "glance", 33)


def test_multi_tenant_container_per_image() -> None:
    assert naming.multi_tenant_container(IMAGE, "glance") == f"glance_{IMAGE}"
    with pytest.raises(errors.InvalidImageId):
        naming.multi_tenant_container("x" * 255, "glance")


# ---------------------------------------------------------------------- accounts file


def test_accounts_file(tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(
        tmp_path / "swift.conf",
        """
        [ref1]
        auth_address = "http://127.0.0.1:8080/auth/v1.0"
        user = 'test:tester'
        key = "testing"
        auth_version = 1

        [ref2]
        auth_address = https://keystone.example.com:5000/v3
        user = tenant:user2
        key = key2
        user_domain_name = Users

        [appcred]
        auth_address = https://keystone.example.com:5000/v3
        application_credential_id = abc
        application_credential_secret = app-secret

        [broken]
        auth_address = https://keystone.example.com:5000/v3
        user = nokey
        """,
    )
    with caplog.at_level(logging.WARNING):
        refs = accounts.load_file(path, default_reference="ref1", default_auth_version="3")
    assert sorted(refs) == ["appcred", "ref1", "ref2"]
    ref1 = refs["ref1"]
    assert ref1.auth_address == "http://127.0.0.1:8080/auth/v1.0"  # quotes stripped
    assert ref1.user == "test:tester"
    assert ref1.key is not None and ref1.key.get_secret_value() == "testing"
    assert ref1.auth_version == "1"
    ref2 = refs["ref2"]
    assert ref2.auth_version == "3"  # swift_store_auth_version
    assert (ref2.user_domain_name, ref2.user_domain_id) == ("Users", None)
    assert (ref2.project_domain_id, ref2.project_domain_name) == ("default", None)
    assert refs["appcred"].uses_application_credential
    assert "[broken]" in caplog.text and "needs user and key" in caplog.text
    assert "nokey" not in caplog.text


def test_broken_default_reference_fails(tmp_path: pathlib.Path) -> None:
    path = write(
        tmp_path / "swift.conf",
        """
        [ref1]
        auth_address = https://keystone.example.com:5000/v3
        user = onlyuser
        key = k
        """,
    )
    with pytest.raises(errors.ConfigurationError, match="project:user"):
        accounts.load_file(path, default_reference="ref1", default_auth_version="3")
    with pytest.raises(errors.ConfigurationError, match="ref9"):
        accounts.load_file(path, default_reference="ref9", default_auth_version="1")


def test_accounts_file_errors_name_the_file_not_the_values(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.ConfigurationError, match="cannot read"):
        accounts.load_file(
            str(tmp_path / "missing"), default_reference="r", default_auth_version="3"
        )
    path = write(tmp_path / "bad.conf", "key = s3cr3t-key\n")
    with pytest.raises(errors.ConfigurationError) as caught:
        accounts.load_file(path, default_reference="r", default_auth_version="3")
    assert "s3cr3t-key" not in str(caught.value)


def test_no_credentials_at_all() -> None:
    with pytest.raises(errors.ConfigurationError, match="swift_store_config_file"):
        registry.Registry().build("swift", {}, backend_id="sw")


def test_credentials_in_auth_address_are_refused() -> None:
    with pytest.raises(errors.ConfigurationError, match="credentials"):
        registry.Registry().build(
            "swift", {**BASE, "swift_store_auth_address": "https://u:p@x/v3"}, backend_id="sw"
        )


# ---------------------------------------------------------------------- locations


def _locator(tmp_path: pathlib.Path) -> Locator:
    path = write(
        tmp_path / "swift.conf",
        """
        [ref1]
        auth_address = http://swift.example.com:8080/auth/v1.0
        user = test:tester
        key = testing
        auth_version = 1
        [ref2]
        auth_address = http://swift.example.com:8080/auth/v1.0/
        user = test2:tester2
        key = testing2
        auth_version = 1
        [other]
        auth_address = https://other.example.com/auth/v1.0
        user = o:o
        key = o
        auth_version = 1
        """,
    )
    refs = accounts.load_file(path, default_reference="ref1", default_auth_version="3")
    return Locator(default=refs["ref1"], references=refs, multi_tenant=False)


def test_new_locations_carry_no_credentials(tmp_path: pathlib.Path) -> None:
    locator = _locator(tmp_path)
    assert str(locator.new_location("glance", IMAGE, storage_url=None)) == (
        f"swift+config://ref1/glance/{IMAGE}"
    )
    plain = accounts.from_options(options())
    single = Locator(default=plain, references={}, multi_tenant=False)
    assert str(single.new_location("glance", "img", storage_url=None)) == (
        "swift+https://keystone.example.com:5000/v3/glance/img"
    )
    multi = Locator(default=plain, references={}, multi_tenant=True)
    assert str(
        multi.new_location("glance_img", "img", storage_url="http://s.example.com/v1/AUTH_t")
    ) == ("swift+http://s.example.com/v1/AUTH_t/glance_img/img")


@pytest.mark.parametrize(
    ("uri", "reference"),
    [
        ("swift+config://ref2/glance/x", "ref2"),
        ("swift+http://swift.example.com:8080/auth/v1.0/glance/x", "ref1"),  # the default
        # the location's user selects the account; its key is ignored
        ("swift+http://test2%3Atester2:WRONG@swift.example.com:8080/auth/v1.0/glance/x", "ref2"),
        ("swift+http://nobody:x@swift.example.com:8080/auth/v1.0/glance/x", "ref1"),
        ("swift://other.example.com/auth/v1.0/glance/x", "other"),  # swift:// is https
    ],
)
def test_which_account_reads_a_location(tmp_path: pathlib.Path, uri: str, reference: str) -> None:
    target = _locator(tmp_path).target(locations.parse(uri), storage_url=None)
    assert target.account.reference == reference
    assert (target.container, target.obj) == ("glance", "x")


@pytest.mark.parametrize(
    "uri",
    [
        "swift+config://nosuchref/glance/x",
        "swift://swift.example.com:8080/auth/v1.0/glance/x",  # https, but the account is http
        "swift+http://elsewhere.example.com/auth/v1.0/glance/x",
        "file:///var/lib/glance/images/x",
    ],
)
def test_locations_outside_the_backend(tmp_path: pathlib.Path, uri: str) -> None:
    locator = _locator(tmp_path)
    location = locations.parse(uri)
    assert not locator.owns(location, storage_url=None)
    with pytest.raises(errors.InvalidLocation):
        locator.target(location, storage_url=None)


def test_multi_tenant_locations_stay_on_the_service_swift() -> None:
    plain = accounts.from_options(options())
    multi = Locator(default=plain, references={}, multi_tenant=True)
    ours = locations.parse("swift+http://s.example.com:8080/v1/AUTH_other/glance_x/x")
    storage = "http://s.example.com:8080/v1/AUTH_service"
    target = multi.target(ours, storage_url=storage)
    assert target.url == "http://s.example.com:8080/v1/AUTH_other"
    for uri in (
        "swift+https://s.example.com:8080/v1/AUTH_other/glance_x/x",  # another scheme
        "swift+http://evil.example.com/v1/AUTH_other/glance_x/x",
        "swift+config://ref1/glance_x/x",
    ):
        assert not multi.owns(locations.parse(uri), storage_url=storage)


# ---------------------------------------------------------------------- keystone v3


def test_keystone_url_gets_a_version() -> None:
    assert auth.keystone_url("https://ks:5000") == "https://ks:5000/v3"
    assert auth.keystone_url("https://ks:5000/identity/") == "https://ks:5000/identity/v3"
    assert auth.keystone_url("https://ks:5000/v3/") == "https://ks:5000/v3"
    assert auth.keystone_url("https://ks:5000/v3.0") == "https://ks:5000/v3.0"


def test_v3_password_arguments() -> None:
    account = accounts.from_options(options())
    name, arguments = auth.v3_plugin_arguments(account)
    assert name == "Password"
    assert arguments == {
        "auth_url": AUTH,
        "username": "glance",
        "project_name": "service",
        "password": "s3cr3t-key",
        "user_domain_id": "default",
        "project_domain_id": "default",
    }


def test_v3_project_id_and_domain_names(tmp_path: pathlib.Path) -> None:
    path = write(
        tmp_path / "swift.conf",
        """
        [ref1]
        auth_address = https://ks.example.com
        user = glance
        key = k
        project_id = 0123abcd
        user_domain_name = Users
        project_domain_name = Projects
        """,
    )
    account = accounts.load_file(path, default_reference="ref1", default_auth_version="3")["ref1"]
    name, arguments = auth.v3_plugin_arguments(account)
    assert name == "Password"
    assert arguments["auth_url"] == "https://ks.example.com/v3"
    assert arguments["project_id"] == "0123abcd"
    assert "project_name" not in arguments
    assert arguments["user_domain_name"] == "Users"
    assert arguments["project_domain_name"] == "Projects"
    assert "user_domain_id" not in arguments and "project_domain_id" not in arguments


def test_v3_application_credential() -> None:
    account = accounts.from_options(
        SwiftOptions.model_validate(
            {
                "swift_store_auth_address": AUTH,
                "swift_store_application_credential_id": "cred-id",
                "swift_store_application_credential_secret": "cred-secret",
            }
        )
    )
    name, arguments = auth.v3_plugin_arguments(account)
    assert name == "ApplicationCredential"
    assert arguments == {
        "auth_url": AUTH,
        "application_credential_id": "cred-id",
        "application_credential_secret": "cred-secret",
    }


def test_v3_authenticator_builds_a_keystoneauth_session() -> None:
    from keystoneauth1.identity import v3

    account = accounts.from_options(options())
    authenticator = auth.V3Authenticator(
        account,
        tls=auth.Tls(cacert="/etc/ssl/ca.pem"),
        timeout=5,
        endpoint=auth.Endpoint(region="RegionTwo", interface="internalURL"),
        expire_soon=60,
    )
    plugin = authenticator.session.auth
    assert isinstance(plugin, v3.Password)
    assert plugin.auth_url == AUTH
    assert authenticator.session.verify == "/etc/ssl/ca.pem"


def test_v3_unreachable_keystone_is_retryable() -> None:
    account = accounts.from_options(options(swift_store_auth_address="http://127.0.0.1:9/v3"))
    authenticator = auth.V3Authenticator(
        account, tls=auth.Tls(), timeout=2, endpoint=auth.Endpoint(), expire_soon=60
    )
    with pytest.raises(errors.RemoteUnavailable) as caught:
        authenticator.authenticate(now=0.0)
    assert "s3cr3t-key" not in str(caught.value)


@pytest.mark.parametrize(
    ("tls", "verify"),
    [(auth.Tls(), True), (auth.Tls(cacert="/ca"), "/ca"), (auth.Tls(insecure=True), False)],
)
def test_tls_verification(tls: auth.Tls, verify: bool | str) -> None:
    assert tls.verify == verify


def test_missing_cacert_fails_at_build(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.ConfigurationError, match="swift_store_cacert"):
        registry.Registry().build(
            "swift", {**BASE, "swift_store_cacert": str(tmp_path / "none.pem")}, backend_id="sw"
        )


# ---------------------------------------------------------------------- token cache


class CountingAuthenticator(auth.Authenticator):
    def __init__(self, *, lifetime: float | None) -> None:
        super().__init__(accounts.from_options(options()))
        self.lifetime = lifetime
        self.calls = 0

    def authenticate(self, *, now: float) -> auth.Token:
        self.calls += 1
        expires = None if self.lifetime is None else now + self.lifetime
        return auth.Token("https://s/v1/AUTH_x", f"token-{self.calls}", expires)


def test_tokens_are_refreshed_when_they_expire_soon() -> None:
    clock = [1000.0]
    source = CountingAuthenticator(lifetime=3600)
    cache = auth.TokenCache(source, expire_soon=60, clock=lambda: clock[0])
    first = cache.get()
    assert cache.get() is first
    clock[0] += 3600 - 61  # 61 s left: still good
    assert cache.get() is first
    clock[0] += 2  # 59 s left: expires soon
    second = cache.get()
    assert second.value == "token-2"
    cache.invalidate(first)  # a stale token reported by another thread changes nothing
    assert cache.get() is second
    cache.invalidate(second)
    assert cache.get().value == "token-3"


def test_tokens_without_expiry_last_until_refused() -> None:
    source = CountingAuthenticator(lifetime=None)
    cache = auth.TokenCache(
        source, expire_soon=60, storage_url="https://override/v1/AUTH_y", clock=lambda: 0.0
    )
    assert cache.known_storage_url == "https://override/v1/AUTH_y"
    token = cache.get()
    assert token.storage_url == "https://override/v1/AUTH_y"  # swift_store_endpoint wins
    assert cache.get() is token
    assert source.calls == 1
    assert "token-1" not in repr(token)


# ---------------------------------------------------------------------- ACLs


def test_acl_headers_as_glance() -> None:
    readers, writers = ["t1", "t2"], ["w1"]
    assert acl_headers(public=False, read_tenants=readers, write_tenants=[*writers, "adm"]) == {
        "X-Container-Read": "t1:*,t2:*",
        "X-Container-Write": "w1:*,adm:*",
    }
    assert acl_headers(public=True, read_tenants=readers, write_tenants=[]) == {
        "X-Container-Read": "*:*",
        "X-Container-Write": "",
    }
    assert readers == ["t1", "t2"] and writers == ["w1"]


def test_pydantic_secret_type_is_used() -> None:
    assert SwiftOptions.model_fields["swift_store_key"].annotation == pydantic.SecretStr | None
