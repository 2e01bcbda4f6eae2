"""s3torchconnector.dcp's RoundRobinPrefixStrategy: the arguments it refuses, and the message that
says why. The strategies writing checkpoints over HTTP: tests/e2e/test_dcp.py."""

import pytest


@pytest.mark.parametrize(
    "prefixes, message",
    [
        ([], "user_prefixes must be a non-empty list of strings"),
        ("a", "user_prefixes must be a non-empty list of strings"),
        (["a", ""], "user_prefixes must be non-empty strings, got ['a', '']"),
        (["a", 7], "user_prefixes must be non-empty strings, got ['a', 7]"),
    ],
)
def test_round_robin_prefixes_are_refused_with_a_message_that_says_why(prefixes, message):
    """RoundRobinPrefixStrategy.__init__: every bad list is refused, and the message names the fault."""
    from s3torchconnector.dcp import RoundRobinPrefixStrategy

    with pytest.raises(ValueError) as raised:
        RoundRobinPrefixStrategy(prefixes)
    assert str(raised.value) == message


@pytest.mark.parametrize("epoch_num", [True, 1.0, "1"])
def test_round_robin_refuses_an_epoch_that_is_not_an_int(epoch_num):
    """RoundRobinPrefixStrategy.__init__ checks the epoch it was given."""
    from s3torchconnector.dcp import RoundRobinPrefixStrategy

    with pytest.raises(ValueError, match="epoch_num must be None or an int"):
        RoundRobinPrefixStrategy(["a", "b"], epoch_num=epoch_num)
    assert RoundRobinPrefixStrategy(["a", "b"], epoch_num=3).generate_prefix(3) == "b/epoch_3/__3_"
