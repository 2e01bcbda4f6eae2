"""S3ClientConfig, UserAgent and parse_s3_uri, S3Client's own arguments, and every setting reaching the
native client as it is built (its constructor stood in for where a test looks at what it gets): no
network."""

import dataclasses
import pathlib
import platform
import sys

import pytest

from s3torchconnector import S3ClientConfig as ExportedConfig
from s3torchconnector import _native
from s3torchconnector._s3client import S3Client, S3ClientConfig, _s3client
from s3torchconnector._s3uri import parse_s3_uri
from s3torchconnector._user_agent import UserAgent
from s3torchconnector._version import __version__

REGION = "us-east-1"
MIB = 1024 * 1024
GIB = 1024 * MIB


# ---------------------------------------------------------------- S3ClientConfig


def test_defaults():
    config = S3ClientConfig()
    assert config.throughput_target_gbps == 10.0
    assert config.part_size == 8 * MIB
    assert config.unsigned is False
    assert config.force_path_style is False
    assert config.max_attempts == 10
    assert config.profile is None
    assert config.requester_pays is False


def test_exported_at_package_level():
    assert ExportedConfig is S3ClientConfig


def test_all_fields_settable():
    config = S3ClientConfig(
        throughput_target_gbps=2.5,
        part_size=16 * MIB,
        unsigned=True,
        force_path_style=True,
        max_attempts=3,
        profile="dev",
    )
    assert (
        config.throughput_target_gbps,
        config.part_size,
        config.unsigned,
        config.force_path_style,
        config.max_attempts,
        config.profile,
    ) == (2.5, 16 * MIB, True, True, 3, "dev")


def test_frozen_and_comparable():
    config = S3ClientConfig(part_size=16 * MIB)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.part_size = 32 * MIB
    assert config == S3ClientConfig(part_size=16 * MIB)
    assert config != S3ClientConfig()
    assert hash(config) == hash(S3ClientConfig(part_size=16 * MIB))


@pytest.mark.parametrize("part_size", [1, 756, 5 * MIB - 1, 5 * MIB, 5 * MIB + 1, 8 * MIB, GIB, 5 * GIB])
def test_part_size_within_bounds(part_size):
    """As the original: parts under S3's 5 MiB upload minimum serve reads (uploads use 5 MiB then)."""
    assert S3ClientConfig(part_size=part_size).part_size == part_size


@pytest.mark.parametrize("part_size", [0, -1, -5 * MIB, 5 * GIB + 1, 10 * GIB])
def test_part_size_out_of_bounds(part_size):
    with pytest.raises(ValueError) as raised:
        S3ClientConfig(part_size=part_size)
    assert "part_size" in str(raised.value)
    assert str(part_size) in str(raised.value)


@pytest.mark.parametrize("part_size", [8.0 * MIB, "8388608", None, True])
def test_part_size_type(part_size):
    with pytest.raises(TypeError) as raised:
        S3ClientConfig(part_size=part_size)
    assert "part_size" in str(raised.value)


@pytest.mark.parametrize("max_attempts", [1, 2, 10, 64])
def test_max_attempts_valid(max_attempts):
    assert S3ClientConfig(max_attempts=max_attempts).max_attempts == max_attempts


def test_more_attempts_than_the_crt_makes_are_refused_saying_why():
    """The original accepts them and panics when the client is made (its #361); the CRT retries at most 63 times."""
    with pytest.raises(ValueError, match="max_attempts must be from 1 to 64, got 65: the CRT's backoff retries"):
        S3ClientConfig(max_attempts=65)


@pytest.mark.parametrize("max_attempts", [0, -1])
def test_max_attempts_too_small(max_attempts):
    with pytest.raises(ValueError) as raised:
        S3ClientConfig(max_attempts=max_attempts)
    assert "max_attempts" in str(raised.value)


@pytest.mark.parametrize("max_attempts", [1.0, "3", None, True, False])
def test_max_attempts_type(max_attempts):
    with pytest.raises(TypeError) as raised:
        S3ClientConfig(max_attempts=max_attempts)
    assert "max_attempts" in str(raised.value)


def test_stall_detection_defaults_drop_only_connections_that_move_nothing_for_30_s():
    config = S3ClientConfig()
    assert (config.stall_timeout_seconds, config.min_throughput_bytes_per_second) == (30, 1)


@pytest.mark.parametrize(
    "field, value, error",
    [
        ("stall_timeout_seconds", 0, ValueError),
        ("stall_timeout_seconds", -5, ValueError),
        ("stall_timeout_seconds", 24 * 3600 + 1, ValueError),
        ("stall_timeout_seconds", 2.5, TypeError),
        ("stall_timeout_seconds", True, TypeError),
        ("min_throughput_bytes_per_second", 0, ValueError),
        ("min_throughput_bytes_per_second", -1, ValueError),
        ("min_throughput_bytes_per_second", "1", TypeError),
        ("min_throughput_bytes_per_second", None, TypeError),
    ],
)
def test_stall_detection_settings_refused(field, value, error):
    with pytest.raises(error) as raised:
        S3ClientConfig(**{field: value})
    assert field in str(raised.value)


@pytest.mark.parametrize("gbps", [0, 0.0, -1, -0.5, float("nan")])
def test_throughput_not_positive(gbps):
    with pytest.raises(ValueError) as raised:
        S3ClientConfig(throughput_target_gbps=gbps)
    assert "throughput_target_gbps" in str(raised.value)


@pytest.mark.parametrize("gbps", ["10", None, True])
def test_throughput_type(gbps):
    with pytest.raises(TypeError):
        S3ClientConfig(throughput_target_gbps=gbps)


def test_throughput_accepts_int():
    assert S3ClientConfig(throughput_target_gbps=25).throughput_target_gbps == 25


@pytest.mark.parametrize("field", ["unsigned", "force_path_style", "requester_pays"])
@pytest.mark.parametrize("value", [1, 0, "true", None])
def test_flags_must_be_bool(field, value):
    with pytest.raises(TypeError) as raised:
        S3ClientConfig(**{field: value})
    assert field in str(raised.value)


@pytest.mark.parametrize("profile", [5, b"dev", ["dev"]])
def test_profile_type(profile):
    with pytest.raises(TypeError):
        S3ClientConfig(profile=profile)


def test_requester_pays_with_unsigned_is_rejected():
    with pytest.raises(ValueError) as raised:
        S3ClientConfig(requester_pays=True, unsigned=True)
    assert "requester_pays" in str(raised.value) and "unsigned" in str(raised.value)
    assert S3ClientConfig(requester_pays=True).requester_pays is True
    assert S3ClientConfig(unsigned=True).unsigned is True


def test_client_keeps_its_config():
    config = S3ClientConfig(part_size=6 * MIB)
    assert S3Client("us-east-1", s3client_config=config).s3client_config is config
    assert S3Client("us-east-1").s3client_config == S3ClientConfig()


def test_client_is_lazy():
    # No endpoint is contacted (nor parsed) until the first request.
    client = S3Client("us-east-1", endpoint="http://127.0.0.1:1")
    assert client.endpoint == "http://127.0.0.1:1"
    assert client._native.built() is None


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        ({"region": ""}, ValueError, "region must be a non-empty string such as 'us-east-1', got ''"),
        ({"region": 3}, ValueError, "region must be a non-empty string such as 'us-east-1', got 3"),
        ({"endpoint": 8080}, TypeError, "endpoint must be a string URL, got int"),
        ({"s3client_config": {"part_size": 1}}, TypeError, "s3client_config must be an S3ClientConfig, got dict"),
    ],
)
def test_a_client_refuses_bad_arguments_with_what_is_expected(arguments, error, message):
    """S3Client.__init__: each refusal, and its whole message."""
    with pytest.raises(error) as refused:
        S3Client(**{"region": REGION, **arguments})
    assert str(refused.value) == message


# ---------------------------------------------------------------- UserAgent


def test_user_agent_prefix_has_the_originals_fields_in_order():
    import torch

    prefix = UserAgent().prefix
    assert prefix == UserAgent.get_default_prefix()
    v = sys.version_info
    assert prefix.split(" ") == [
        f"s3torchconnector/{__version__}",
        "ua/2.1",
        f"os/{platform.system().lower()}#{platform.release()}",
        f"lang/python#{v.major}.{v.minor}.{v.micro}",
        f"md/arch#{platform.machine().lower()}",
        f"md/pytorch#{torch.__version__}",
    ]


def test_user_agent_comments():
    prefix = UserAgent(["lightning/2.1", "my-app"]).prefix
    assert prefix.startswith(f"s3torchconnector/{__version__} ")
    assert prefix.endswith(" (lightning/2.1; my-app)")
    assert UserAgent([]).prefix == UserAgent().prefix
    assert UserAgent(None).prefix == UserAgent().prefix
    assert UserAgent(["", "x"]).prefix.endswith(" (x)")  # empty comments are left out


@pytest.mark.parametrize("comments", ["my-app", ("a", "b"), ["ok", 5], [None], 7])
def test_user_agent_bad_comments(comments):
    with pytest.raises(ValueError):
        UserAgent(comments)


def test_client_user_agent_prefix():
    client = S3Client("us-east-1", user_agent=UserAgent(["custom"]))
    assert client.user_agent_prefix == UserAgent(["custom"]).prefix
    assert S3Client("us-east-1").user_agent_prefix == UserAgent().prefix


# ---------------------------------------------------------------- parse_s3_uri


@pytest.mark.parametrize(
    "uri,expected",
    [
        ("s3://bucket/key", ("bucket", "key")),
        ("s3://bucket/a/b/c.txt", ("bucket", "a/b/c.txt")),
        ("s3://bucket/", ("bucket", "")),
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/prefix/", ("bucket", "prefix/")),
        ("s3://my.dotted-bucket_1/k", ("my.dotted-bucket_1", "k")),
        ("s3://bucket/with space/ü+%=~*'\"", ("bucket", "with space/ü+%=~*'\"")),
        ("s3://bucket//leading-slash", ("bucket", "/leading-slash")),
        ("s3://bucket/key?x=1#frag", ("bucket", "key?x=1#frag")),
    ],
)
def test_parse_good_uris(uri, expected):
    assert parse_s3_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "bucket/key",
        "/bucket/key",
        "http://bucket/key",
        "s3:/bucket/key",
        "s3:bucket/key",
        "S3://bucket/key",
        "",
        "s3://",
        "s3:///key",
        "s3://bad bucket/key",
        "s3://bu$ket/key",
        "s3://-bucket/key",
        "s3://bücket/key",
    ],
)
def test_parse_bad_uris(uri):
    with pytest.raises(ValueError) as raised:
        parse_s3_uri(uri)
    assert repr(uri) in str(raised.value), "the error names the URI"


@pytest.mark.parametrize("uri", [None, 5, b"s3://bucket/key"])
def test_parse_non_string(uri):
    with pytest.raises(TypeError):
        parse_s3_uri(uri)


def test_the_native_client_takes_every_option_python_decides():
    options = S3ClientConfig().native_options("us-east-1", "http://127.0.0.1:1", "agent")
    _native.NativeClient(**options)  # every name known natively, none missing
    missing = dict(options)
    del missing["part_size"]
    with pytest.raises(TypeError, match="part_size"):
        _native.NativeClient(**missing)
    with pytest.raises(TypeError, match="read_window"):
        _native.NativeClient(**options, read_window=1)


def test_memory_limit_is_the_crts_default_unless_given():
    assert S3ClientConfig().memory_limit_bytes is None
    assert S3ClientConfig().native_options("us-east-1", "", "ua")["memory_limit_bytes"] == 0  # the CRT decides
    config = S3ClientConfig(memory_limit_bytes=512 * MIB)
    assert config.native_options("us-east-1", "", "ua")["memory_limit_bytes"] == 512 * MIB


@pytest.mark.parametrize(
    "settings",
    [dict(memory_limit_bytes=256 * MIB - 1), dict(memory_limit_bytes=0), dict(part_size=GIB, memory_limit_bytes=GIB)],
)
def test_a_memory_limit_the_crt_cannot_work_in_is_refused(settings):
    with pytest.raises(ValueError, match="memory_limit_bytes must be at least"):
        S3ClientConfig(**settings)


def test_network_interfaces_must_exist_here():
    with pytest.raises(
        ValueError, match="network interface 'no-such-nic0' does not exist on this machine; it has .*lo"
    ):
        S3ClientConfig(network_interface_names=["lo", "no-such-nic0"])
    with pytest.raises(ValueError, match="at least one interface"):
        S3ClientConfig(network_interface_names=[])
    with pytest.raises(TypeError):
        S3ClientConfig(network_interface_names="lo")  # a string is not a list of names


def test_network_interfaces_given_as_a_list_are_kept_as_a_tuple():
    config = S3ClientConfig(network_interface_names=["lo"])
    assert config.network_interface_names == ("lo",) and hash(config) == hash(
        S3ClientConfig(network_interface_names=("lo",))
    )
    assert config.native_options("us-east-1", "", "ua")["network_interface_names"] == ["lo"]


# ---------------------------------------------------------------- what the native client is built with


@pytest.fixture
def built(monkeypatch):
    """The arguments each native client is built with (the built client is a stand-in)."""
    calls = []

    def native_client(*args, **kwargs):
        calls.append((args, kwargs))
        return object()

    monkeypatch.setattr(_s3client._native, "NativeClient", native_client)
    return calls


def test_every_setting_of_the_config_reaches_the_native_client(built, monkeypatch):
    """S3Client._client_builder: each S3ClientConfig field is passed on, under its own name."""
    for variable in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(variable, raising=False)
    config = S3ClientConfig(
        throughput_target_gbps=2.5,
        part_size=16 * 1024 * 1024,
        unsigned=True,
        force_path_style=True,
        max_attempts=3,
        profile="other",
        upload_checksum="CRC32",
        validate_checksums=True,
        stall_timeout_seconds=7,
        min_throughput_bytes_per_second=1000,
        memory_limit_bytes=512 * 1024 * 1024,
        network_interface_names=("lo",),
    )
    _ = S3Client("eu-west-2", endpoint="http://127.0.0.1:9", s3client_config=config)._client  # built now
    ((args, kwargs),) = built
    assert args == () and kwargs.pop("region") == "eu-west-2"
    prefix = kwargs.pop("user_agent")
    assert prefix.startswith("s3torchconnector/")
    assert kwargs == dict(
        endpoint="http://127.0.0.1:9",
        throughput_target_gbps=2.5,
        part_size=16 * 1024 * 1024,
        unsigned_requests=True,
        force_path_style=True,
        max_attempts=3,
        profile="other",
        requester_pays=False,
        upload_checksum="CRC32",
        validate_checksums=True,
        stall_timeout_seconds=7,
        min_throughput_bytes_per_second=1000,
        memory_limit_bytes=512 * 1024 * 1024,
        network_interface_names=["lo"],
    )
    assert type(kwargs["throughput_target_gbps"]) is float and type(kwargs["validate_checksums"]) is bool


def test_the_defaults_reach_the_native_client_as_it_takes_them(built, monkeypatch):
    """S3Client._client_builder and _resolve_endpoint: no endpoint (and none in the environment) is
    "" (the region's own), no profile is "", no upload checksum is "", and validate_checksums
    None is False; AWS_ENDPOINT_URL_S3 is taken when no endpoint is given."""
    for variable in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(variable, raising=False)
    _ = S3Client(REGION, s3client_config=S3ClientConfig(upload_checksum=None, requester_pays=True))._client
    kwargs = built[-1][1]
    assert (kwargs["endpoint"], kwargs["profile"], kwargs["upload_checksum"]) == ("", "", "")
    assert kwargs["validate_checksums"] is False and kwargs["requester_pays"] is True
    assert kwargs["throughput_target_gbps"] == 10.0 and type(kwargs["throughput_target_gbps"]) is float

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:8")
    _ = S3Client(REGION)._client
    assert built[-1][1]["endpoint"] == "http://127.0.0.1:8" and built[-1][1]["upload_checksum"] == "CRC32C"


@pytest.mark.parametrize(
    "value, expected",
    [(1, 1), ("1073741824", 2**30), ("500GiB", 500 * 2**30), ("1.5 TB", 1_500_000_000_000), ("64mib", 64 * 2**20)],
)
def test_cache_max_bytes_takes_numbers_and_sizes(value, expected):
    assert S3ClientConfig(cache_dir="/tmp/c", cache_max_bytes=value).cache_max_bytes == expected


@pytest.mark.parametrize(
    "value, error",
    [
        ("lots", ValueError),
        ("5 parsecs", ValueError),
        (0, ValueError),
        (-1, ValueError),
        (True, TypeError),
        (1.5, TypeError),
    ],
)
def test_cache_max_bytes_refused_saying_why(value, error):
    with pytest.raises(error, match="cache_max_bytes"):
        S3ClientConfig(cache_max_bytes=value)


def test_cache_dir_must_be_a_path():
    with pytest.raises(TypeError, match="cache_dir"):
        S3ClientConfig(cache_dir=3)
    with pytest.raises(ValueError, match="cache_dir must name a folder"):
        S3ClientConfig(cache_dir="")
    assert S3ClientConfig(cache_dir=pathlib.Path("/tmp/c")).cache_dir == pathlib.Path("/tmp/c")
