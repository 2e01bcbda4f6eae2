"""Listing pages requested one ahead of their use.

A dataset that lists as it reads would otherwise wait a full round trip (20 ms or more on S3) every
1,000 objects, with nothing else to do: a DataLoader worker over 10,000 small objects spent a tenth of
its epoch so. Here the next page is requested on a helper thread as soon as one is handed out, and the
objects of the page in hand are read meanwhile. Pages come out in the order the listing gives them.
"""

from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Optional, TypeVar

Page = TypeVar("Page")
_END = object()


def pages_ahead(pages: Iterator[Page]) -> Iterator[Page]:
    """The pages of ``pages``, the next one's request in flight while the consumer holds this one. An
    error of the listing is raised where its page would have come. Closing the generator early leaves
    at most one request running, whose page is dropped."""
    # One thread per listing: its requests stay in order, and the native call frees the GIL while it waits.
    helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3torchconnector-listing")
    try:
        ahead = helper.submit(next, pages, _END)
        while True:
            page: Optional[object] = ahead.result()
            if page is _END:
                return
            ahead = helper.submit(next, pages, _END)
            yield page  # type: ignore[misc]
    finally:
        helper.shutdown(wait=False, cancel_futures=True)
