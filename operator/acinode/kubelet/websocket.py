"""The websocket transport of the remote-command protocol (``v5.channel.k8s.io``, ``v4.channel.k8s.io``).

The API server passes ``kubectl exec``'s websocket straight through to nodes that declare the
``ExtendWebSocketsToKubelet`` feature (``status.declaredFeatures``); websocket clients that reach the kubelet
port directly use it too.
"""

from __future__ import annotations

import contextlib
import logging

from aiohttp import WSMsgType, web

from acinode import errors
from acinode.kubelet import channels

logger = logging.getLogger(__name__)


def is_websocket_request(request: web.Request) -> bool:
    return (
        request.headers.get("Upgrade", "").lower() == "websocket"
        and "upgrade" in request.headers.get("Connection", "").lower()
    )


class WebSocketStreams:
    """Remote-command streams over one accepted websocket."""

    def __init__(self, ws: web.WebSocketResponse, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol

    @property
    def response(self) -> web.StreamResponse:
        return self.ws

    @classmethod
    async def accept(cls, request: web.Request, max_message_bytes: int) -> WebSocketStreams:
        """Upgrade the request, negotiating a supported protocol; InvalidRequestError if none is offered.
        A message larger than ``max_message_bytes`` ends the session (close code 1009); aiohttp's reader stops
        reading the connection while unread messages pile up, so nothing else grows without bound."""
        offered = channels.split_header_list(request.headers.getall("Sec-WebSocket-Protocol", []))
        protocol = channels.negotiate(offered)
        if protocol is None:
            raise errors.InvalidRequestError(
                f"requested protocol(s) are not supported: {offered}; supports {list(channels.SUPPORTED_PROTOCOLS)}",
                code="BadRequest",
            )
        ws = web.WebSocketResponse(protocols=(protocol,), heartbeat=30.0, max_msg_size=max_message_bytes)
        await ws.prepare(request)
        return cls(ws, protocol)

    async def send(self, channel: int, data: bytes) -> None:
        if not self.ws.closed:
            await self.ws.send_bytes(channels.frame(channel, data))

    async def receive(self) -> tuple[int, bytes] | None:
        """The client's next stdin data, resize, or (v5) stream close; None when the client is gone."""
        while True:
            message = await self.ws.receive()
            if message.type == WSMsgType.BINARY:
                data: bytes = message.data
                if not data:
                    continue
                channel, payload = channels.parse_frame(data)
                if channel == channels.CLOSE_SIGNAL and self.protocol != channels.V5:
                    continue
                return channel, payload
            if message.type == WSMsgType.TEXT:
                continue  # the base64 variants are not negotiated: text frames carry nothing for us
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return None

    async def finish(self, status: channels.ExitStatus) -> None:
        """Write the final Status on the error channel and close."""
        with contextlib.suppress(ConnectionError):
            await self.send(channels.ERROR, status.to_bytes())
        await self.ws.close()

    async def abort(self) -> None:
        await self.ws.close()
