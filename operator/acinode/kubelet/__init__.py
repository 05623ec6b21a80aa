"""The kubelet API of the virtual nodes: what the API server (``kubectl logs``, ``exec``, node proxy) and
metrics-server ask a node's kubelet, answered from the pods' ACI container groups.

One HTTPS port serves every virtual node of the operator (their Nodes all advertise it). Modules:

- ``server``: the aiohttp application, its routes and start-up; ``tls``: serving certificate and client CA;
- ``listener``: connection caps, TLS handshake and request-head bounds below HTTP; ``sessions``: caps on exec and
  ``logs -f`` per user and per namespace (see docs/kubelet-api.md, "Limits");
- ``auth``: authentication (client certificates, TokenReview) and authorization (SubjectAccessReview);
- ``targets``: which virtual node and container group a request is about;
- ``responses``: the one mapping from acinode errors to HTTP statuses;
- ``logs``: ``/containerLogs`` (options, timestamps, follow); ``stats``: ``/stats/summary``, ``/metrics/resource``;
- ``channels``, ``websocket``, ``spdy``, ``spdysession``, ``execbridge``: ``/exec`` over the Kubernetes streaming
  protocols, bridged to ACI's exec websocket.

See docs/kubelet-api.md.
"""
