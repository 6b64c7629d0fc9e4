"""Read-your-writes for one client of the generated Python SDK (hand-written;
`make sdk` copies it into the package as `commit_position`).

When the service reads from replicas, the answer to each write carries
`X-Commit-Position`; a read sending it back sees that write. `CommitPosition`
keeps the newest position a client was answered and sends it with every later
request of that client, through httpx's event hooks:

    from event_ledger_api_client import AuthenticatedClient
    from event_ledger_api_client.commit_position import CommitPosition

    client = AuthenticatedClient(
        base_url=..., token=..., prefix="Token", httpx_args=CommitPosition().httpx_args()
    )

For the async calls (`asyncio`, `asyncio_detailed`), pass `async_httpx_args()`.
"""

from typing import Any

import httpx

HEADER = "X-Commit-Position"


def _order(position: str) -> int:
    high, _, low = position.partition("/")
    return (int(high, 16) << 32) | int(low or "0", 16)


class CommitPosition:
    """The newest commit position one client was answered."""

    def __init__(self) -> None:
        self.position: str | None = None

    def send(self, request: httpx.Request) -> None:
        if self.position and HEADER not in request.headers:
            request.headers[HEADER] = self.position

    def note(self, response: httpx.Response) -> None:
        value = response.headers.get(HEADER)
        if value and (self.position is None or _order(value) > _order(self.position)):
            self.position = value

    def httpx_args(self) -> dict[str, Any]:
        return {"event_hooks": {"request": [self.send], "response": [self.note]}}

    def async_httpx_args(self) -> dict[str, Any]:
        async def send(request: httpx.Request) -> None:
            self.send(request)

        async def note(response: httpx.Response) -> None:
            self.note(response)

        return {"event_hooks": {"request": [send], "response": [note]}}
