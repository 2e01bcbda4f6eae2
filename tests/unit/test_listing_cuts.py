"""Where a parallel listing cuts the keys left after a page (parallel_listing.cut_points)."""

from s3torchconnector._listing.parallel_listing import cut_points


def test_cuts_where_the_page_did_not_vary():
    page = [f"data/{i:07d}" for i in range(1000)]  # data/0000000 .. data/0000999

    points = cut_points("data/", page, None)

    assert points == sorted(points) and all(point > page[-1] for point in points)
    # One cut a place, from the prefix's end to where the page's keys began to differ.
    for head in ("data/000", "data/00", "data/0", "data/"):
        assert any(point.startswith(head) and len(point) == len(head) + 1 for point in points), head


def test_cuts_stay_below_the_range_end():
    page = [f"data/{i:07d}" for i in range(1000)]

    points = cut_points("data/", page, "data/05")

    assert points and all(page[-1] < point < "data/05" for point in points)


def test_no_cut_where_nothing_is_left_to_cut():
    assert cut_points("p/", ["p/z", "p/zz"], "p/zzz") == []
