"""The operator's Azure Container Instances client: the only code that knows the Azure SDK.

- ``api``: the ``AciApi`` role (what the operator may ask of ACI, and the contract of each call).
- ``target``: where the calls go (subscription, resource group, region, cloud, credential choice).
- ``credentials``: builds an azure-identity credential (or a static token) for a target.
- ``azure``: ``AzureAciApi``, the implementation on ``azure.mgmt.containerinstance.aio``.
- ``pipeline``: the SDK pipeline policies that put the rate limiter and the request counter on every request.
- ``ratelimit``: client-side token buckets and the shared pause after a 429.
- ``counting``: ARM requests by operation and result, for metrics.
- ``translate``: SDK and transport exceptions into ``acinode.errors``, once.
"""
