"""Every invalid input in the registry raises the right exception with a clear message."""

import re

import pytest

from tests.registry import ERROR_CASES, case_ids


def test_error_case_ids_are_unique():
    ids = case_ids(ERROR_CASES)
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", ERROR_CASES, ids=case_ids(ERROR_CASES))
def test_bad_input_is_refused(case):
    with pytest.raises(case.exc) as info:
        case.fn()
    assert type(info.value) is case.exc or issubclass(type(info.value), case.exc)
    assert re.search(case.match, str(info.value)), str(info.value)
