"""The remote-command stream protocol: channel framing, protocol negotiation, the final Status and ACI's close
codes; and SPDY/3 framing with its dictionary-primed header compression."""

from __future__ import annotations

import hashlib
import json
import zlib

import pytest

from acinode.kubelet import channels, execbridge, spdy


def test_a_message_is_its_channel_byte_then_the_payload() -> None:
    assert channels.frame(channels.STDOUT, b"hi\n") == b"\x01hi\n"
    assert channels.parse_frame(b"\x00input") == (channels.STDIN, b"input")
    assert channels.parse_frame(b"\xff\x00") == (channels.CLOSE_SIGNAL, b"\x00")
    with pytest.raises(ValueError):
        channels.parse_frame(b"")


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io"], "v5.channel.k8s.io"),
        (["v4.channel.k8s.io", "v5.channel.k8s.io"], "v4.channel.k8s.io"),
        (["v3.channel.k8s.io", "v4.channel.k8s.io"], "v4.channel.k8s.io"),
        (["channel.k8s.io", "base64.channel.k8s.io"], None),
        ([], None),
    ],
)
def test_the_clients_first_supported_protocol_is_chosen(offered: list[str], chosen: str | None) -> None:
    assert channels.negotiate(offered) == chosen


def test_protocol_headers_may_repeat_or_be_comma_joined() -> None:
    assert channels.split_header_list(["v5.channel.k8s.io, v4.channel.k8s.io", "v3.channel.k8s.io"]) == [
        "v5.channel.k8s.io",
        "v4.channel.k8s.io",
        "v3.channel.k8s.io",
    ]


def test_success_is_a_bare_success_status() -> None:
    assert json.loads(channels.ExitStatus(0).to_bytes()) == {"metadata": {}, "status": "Success"}


def test_a_non_zero_exit_carries_the_code_as_kubectl_reads_it() -> None:
    status = channels.ExitStatus(3).to_status()
    assert status["status"] == "Failure"
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"] == {"causes": [{"reason": "ExitCode", "message": "3"}]}


def test_an_error_without_exit_code_is_an_internal_error_with_its_message() -> None:
    status = channels.ExitStatus(None, "ACI went away").to_status()
    assert (status["status"], status["reason"], status["message"]) == (
        "Failure",
        "InternalError",
        "ACI went away",
    )


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [(4000, 0), (4003, 3), (4255, 255), (1000, 0), (None, 0), (1005, 0), (4401, None), (1011, None)],
)
def test_acis_close_code_carries_the_exit_status(code: int | None, exit_code: int | None) -> None:
    assert channels.exit_status_from_close(code).code == exit_code


@pytest.mark.parametrize(
    ("query", "options"),
    [
        ({"stdout": "true", "stderr": "true"}, channels.StreamOptions(False, True, True, False)),
        ({"stdin": "1", "stdout": "1", "tty": "1"}, channels.StreamOptions(True, True, False, True)),
        ({"input": "1", "output": "1"}, channels.StreamOptions(True, True, False, False)),
    ],
)
def test_stream_options_come_from_the_query(query: dict[str, str], options: channels.StreamOptions) -> None:
    assert channels.stream_options_from_query(query) == options


def test_a_tty_session_has_a_resize_stream_and_no_stderr() -> None:
    options = channels.StreamOptions(stdin=True, stdout=True, stderr=True, tty=True)
    assert options.expected_spdy_streams() == {
        channels.ERROR,
        channels.STDIN,
        channels.STDOUT,
        channels.RESIZE,
    }


@pytest.mark.parametrize(
    ("command", "string"),
    [
        (["/bin/sh"], "/bin/sh"),
        (["ls -l"], "ls -l"),
        (["sh", "-c", "echo a; exit 3"], "sh -c 'echo a; exit 3'"),
        (["echo", "two words", "it's"], "echo 'two words' 'it'\"'\"'s'"),
    ],
)
def test_the_command_vector_becomes_one_command_string(command: list[str], string: str) -> None:
    assert execbridge.command_string(command) == string


def test_the_spdy_header_dictionary_is_the_specs() -> None:
    digest = hashlib.sha256(spdy.HEADER_DICTIONARY).hexdigest()
    assert digest == "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02"


def test_header_blocks_round_trip_through_two_connections_worth_of_zlib() -> None:
    client, server = spdy.HeaderCodec(), spdy.HeaderCodec()
    for stream_type in ("error", "stdout", "stderr"):
        block = client.encode({"streamtype": [stream_type], "X-Multi": ["a", "b"]})
        assert server.decode(block) == {"streamtype": [stream_type], "x-multi": ["a", "b"]}


def test_header_blocks_are_zlib_streams_primed_with_the_dictionary() -> None:
    block = spdy.HeaderCodec().encode({"streamtype": ["error"]})
    inflate = zlib.decompressobj(zdict=spdy.HEADER_DICTIONARY)
    assert spdy.parse_header_block(inflate.decompress(block)) == {"streamtype": ["error"]}


def test_frames_are_parsed_from_any_split_of_the_byte_stream() -> None:
    wire = spdy.syn_stream(1, spdy.HeaderCodec().encode({})) + spdy.data_frames(1, b"x" * 70_000, fin=True)
    reader, frames = spdy.FrameReader(), []
    for index in range(0, len(wire), 7):
        reader.feed(wire[index : index + 7])
        frames += reader.frames()
    assert isinstance(frames[0], spdy.ControlFrame) and frames[0].kind == spdy.SYN_STREAM
    data = [f for f in frames if isinstance(f, spdy.DataFrame)]
    assert b"".join(f.data for f in data) == b"x" * 70_000
    assert [f.flags & spdy.FLAG_FIN for f in data] == [0, 0, spdy.FLAG_FIN]


def test_other_spdy_versions_are_a_protocol_error() -> None:
    reader = spdy.FrameReader()
    reader.feed(b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01")
    with pytest.raises(spdy.ProtocolError):
        reader.frames()
