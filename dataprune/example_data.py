"""The example datasets of the notebooks, loaded the way a user would, with a local fallback.

Each known dataset is loaded with :func:`datasets.load_dataset`: from its Hugging Face Hub id
(GSM8K, SQuAD v2) or, for files that are not a hub dataset, from the public URL they come from
(the LLaMA-Factory text demos). Only when that fails because the hub or the URL cannot be reached
(``HF_HUB_OFFLINE`` set and nothing cached, or no network) does :func:`load_example_data` read the
local copy in ``shared/data`` (the folder beside the repository checkout), the same way the
notebooks always read it, and it says which source it used.

>>> data = load_example_data("gsm8k", split="train")  # doctest: +SKIP
>>> print(data.describe())  # doctest: +SKIP
gsm8k[train]: 7473 records from the Hugging Face Hub: openai/gsm8k (config 'main', split 'train')
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataprune.errors import DataPruneError, UnknownOptionError
from dataprune.registry import Registry

logger = logging.getLogger(__name__)

__all__ = [
    "EXAMPLE_DATASETS",
    "LOCAL_DATA_ENV",
    "DataNotAvailableError",
    "ExampleData",
    "ExampleDataset",
    "load_example_data",
    "squad_articles_from_rows",
]

LOCAL_DATA_ENV = "DATAPRUNE_SHARED_DATA"
"""Environment variable naming the folder of the local copies (default: ``shared/data``)."""

_LLAMA_FACTORY = (
    "https://raw.githubusercontent.com/hiyouga/LLaMA-Factory/"
    "ff6d4d12eeb035d6ce06805a5733dd7b29f2ac30/data/"
)


class DataNotAvailableError(DataPruneError, FileNotFoundError):
    """An example dataset could be neither downloaded (offline) nor read from a local copy."""


def _to_list(ds: Any) -> list[Any]:
    return ds.to_list()


@dataclass(frozen=True)
class ExampleDataset:
    """How to load one example dataset.

    Attributes
    ----------
    name : str
        Registry name.
    summary : str
        What the data is.
    path : str
        First argument of :func:`datasets.load_dataset`: a hub id, or a builder name
        (``"json"``, ``"text"``) when ``urls`` is set.
    local : dict of str to str
        Split -> path of the local copy, relative to the ``shared/data`` folder; its keys are
        the valid splits (the first is the default).
    read_local : callable
        ``read_local(path) -> list``: reads a local copy into records.
    config : str, optional
        Hub configuration name.
    from_rows : callable
        ``from_rows(dataset) -> list``: turns the loaded :class:`datasets.Dataset` into records
        shaped as ``read_local`` returns them.
    urls : dict of str to str
        Split -> public URL of the file, for data that is not a hub dataset.
    """

    name: str
    summary: str
    path: str
    local: Mapping[str, str]
    read_local: Callable[[Path], list[Any]]
    config: str | None = None
    from_rows: Callable[[Any], list[Any]] = field(default=_to_list)
    urls: Mapping[str, str] = field(default_factory=dict)

    @property
    def splits(self) -> list[str]:
        """The valid splits (the first is the default)."""
        return list(self.local)

    def origin(self, split: str) -> str:
        """Where the data is downloaded from, in words."""
        if self.urls:
            return self.urls[split]
        config = f"config {self.config!r}, " if self.config else ""
        return f"{self.path} ({config}split {split!r})"


@dataclass(frozen=True)
class ExampleData:
    """Records of an example dataset and where they came from.

    Attributes
    ----------
    name, split : str
        The dataset and split loaded.
    records : list
        The records (their shape is the dataset's; see :data:`EXAMPLE_DATASETS`).
    source : str
        ``"hub"`` (Hugging Face Hub), ``"url"`` (the public file) or ``"local"`` (the copy in
        ``shared/data``).
    origin : str
        Hub id and split, URL, or local file path.
    reason : str or None
        Why the download was not used, when ``source == "local"``.
    """

    name: str
    split: str
    records: list[Any]
    source: str
    origin: str
    reason: str | None = None

    def describe(self) -> str:
        """One line saying which source was used."""
        where = {
            "hub": "the Hugging Face Hub: ",
            "url": "",
            "local": "the local copy ",
        }[self.source]
        line = f"{self.name}[{self.split}]: {len(self.records)} records from {where}{self.origin}"
        return f"{line} ({self.reason})" if self.reason else line


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    from dataprune.io import load_records

    return load_records(path).records


def _read_text_lines(path: Path) -> list[dict[str, str]]:
    # what the "text" builder of datasets yields: one record per line, empty lines included
    return [{"text": line} for line in path.read_text(encoding="utf-8").splitlines()]


def _read_squad(path: Path) -> list[dict[str, Any]]:
    from dataprune.rag.labels import load_squad_v2

    return load_squad_v2(path)


def squad_articles_from_rows(rows: Sequence[Mapping[str, Any]] | Any) -> list[dict[str, Any]]:
    """SQuAD JSON ``data`` (articles -> paragraphs -> qas) from the hub's flat rows.

    Parameters
    ----------
    rows : sequence of dict or datasets.Dataset
        Rows with ``id``, ``title``, ``context``, ``question`` and ``answers``
        (``{"text": [...], "answer_start": [...]}``), as ``rajpurkar/squad_v2`` has them.

    Returns
    -------
    list of dict
        ``[{"title", "paragraphs": [{"context", "qas": [{"id", "question", "answers",
        "is_impossible"}]}]}]`` in first-seen order; a question without answers is impossible.
    """
    articles: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        paragraphs = articles.setdefault(row["title"], {})
        para = paragraphs.setdefault(row["context"], {"context": row["context"], "qas": []})
        texts = list(row["answers"]["text"])
        starts = list(row["answers"]["answer_start"])
        para["qas"].append(
            {
                "id": row["id"],
                "question": row["question"],
                "answers": [{"text": t, "answer_start": s} for t, s in zip(texts, starts)],
                "is_impossible": not texts,
            }
        )
    return [{"title": t, "paragraphs": list(p.values())} for t, p in articles.items()]


EXAMPLE_DATASETS: Registry[ExampleDataset] = Registry("example dataset")
"""The known datasets: records are dicts ``{"question", "answer"}`` (gsm8k), SQuAD articles
(squad_v2, the ``data`` list of the official JSON) and dicts ``{"text"}`` (c4_demo, one C4
document each; wiki_demo, one line of the file each, empty lines included)."""

for _entry in (
    ExampleDataset(
        "gsm8k", "GSM8K grade-school math word problems (MIT)", "openai/gsm8k",
        {"train": "gsm8k/train.jsonl", "test": "gsm8k/test.jsonl"}, _read_jsonl, config="main",
    ),
    ExampleDataset(
        "squad_v2", "SQuAD 2.0 dev set (CC BY-SA 4.0); the local copy: its labelled half",
        "rajpurkar/squad_v2", {"validation": "squad_v2"}, _read_squad,
        from_rows=squad_articles_from_rows,
    ),
    ExampleDataset(
        "c4_demo", "300 C4 web documents (ODC-BY), LLaMA-Factory's c4_demo.jsonl", "json",
        {"train": "lm_text/c4_demo.jsonl"}, _read_jsonl,
        urls={"train": _LLAMA_FACTORY + "c4_demo.jsonl"},
    ),
    ExampleDataset(
        "wiki_demo", "30 Wikipedia articles, one a line (CC BY-SA), LLaMA-Factory's wiki_demo.txt",
        "text", {"train": "lm_text/wiki_demo.txt"}, _read_text_lines,
        urls={"train": _LLAMA_FACTORY + "wiki_demo.txt"},
    ),
):  # fmt: skip
    EXAMPLE_DATASETS.register(_entry.name, _entry)
del _entry


def _offline() -> bool:
    from dataprune.models import _hub_offline

    return _hub_offline()


@contextlib.contextmanager
def _libraries_offline(offline: bool) -> Iterator[None]:
    """Make datasets and huggingface_hub honour ``HF_HUB_OFFLINE`` even when it was set after
    they were imported (they read it once, at import), so no download is attempted."""
    if not offline:
        yield
        return
    import datasets.config
    from huggingface_hub import constants

    saved = datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE = saved


def _unreachable_errors() -> tuple[type[BaseException], ...]:
    """Errors meaning "the hub / URL cannot be reached or the data is not cached offline"."""
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    errors: list[type[BaseException]] = [
        ConnectionError,  # what datasets raises for an unreachable hub (also offline mode)
        TimeoutError,
        OfflineModeIsEnabled,
        LocalEntryNotFoundError,
    ]
    with contextlib.suppress(ImportError):
        import httpx

        errors.append(httpx.TransportError)
    return tuple(errors)


def _download(entry: ExampleDataset, split: str, offline: bool) -> tuple[list[Any] | None, str]:
    """Records from the hub / URL, or ``(None, why not)`` when it cannot be reached."""
    import datasets

    kwargs: dict[str, Any] = {"split": split}
    if entry.urls:
        kwargs["data_files"] = {split: entry.urls[split]}
    args = (entry.path, entry.config) if entry.config else (entry.path,)
    try:
        with _libraries_offline(offline):
            ds = datasets.load_dataset(*args, **kwargs)
    except _unreachable_errors() as exc:
        return None, _why(entry, exc, offline)
    except FileNotFoundError as exc:
        # datasets reports an unreachable URL of data_files as "Unable to find '<url>'"
        if not entry.urls or entry.urls[split] not in str(exc):
            raise
        return None, _why(entry, exc, offline)
    return entry.from_rows(ds), ""


def _why(entry: ExampleDataset, exc: BaseException, offline: bool) -> str:
    target = "its public file" if entry.urls else entry.path
    if offline:
        return f"HF_HUB_OFFLINE is set and {target} is not in the local cache"
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{target} could not be reached ({type(exc).__name__}: {first})"


def _local_roots(local_root: str | os.PathLike[str] | None) -> list[Path]:
    if local_root is not None:
        return [Path(local_root).expanduser()]
    if os.environ.get(LOCAL_DATA_ENV):
        return [Path(os.environ[LOCAL_DATA_ENV]).expanduser()]
    here = Path(__file__).resolve()
    bases = [Path.cwd(), *Path.cwd().parents, *here.parents]
    return list(dict.fromkeys(b / "shared" / "data" for b in bases))


def load_example_data(
    name: str,
    *,
    split: str | None = None,
    local_root: str | os.PathLike[str] | None = None,
) -> ExampleData:
    """Load an example dataset from the hub (or its public URL), else from the local copy.

    Parameters
    ----------
    name : str
        One of :data:`EXAMPLE_DATASETS` (``"gsm8k"``, ``"squad_v2"``, ``"c4_demo"``,
        ``"wiki_demo"``).
    split : str, optional
        The split (default: the dataset's first, e.g. ``"train"``; ``"validation"`` for squad_v2).
    local_root : path, optional
        Folder of the local copies. Default: ``$DATAPRUNE_SHARED_DATA``, else the first
        ``shared/data`` found in the working directory, the package folder or their parents.

    Returns
    -------
    ExampleData
        The records and the source used (``describe()`` says it in one line).

    Raises
    ------
    UnknownOptionError
        Unknown ``name`` or ``split`` (the message lists the valid ones).
    DataNotAvailableError
        The hub / URL cannot be reached (offline) and there is no local copy.

    Notes
    -----
    With ``HF_HUB_OFFLINE=1`` nothing is downloaded: the hub's local cache is tried, then the
    local copy. Only errors meaning "unreachable" or "not cached offline" fall back; any other
    error (a wrong id, a malformed file) is raised.
    """
    entry = EXAMPLE_DATASETS.get(name)
    split = split or entry.splits[0]
    if split not in entry.local:
        raise UnknownOptionError(
            f"unknown split {split!r} of example dataset {entry.name!r}; "
            f"valid: {', '.join(entry.splits)}"
        )
    offline = _offline()
    records, reason = _download(entry, split, offline)
    if records is not None:
        source = "url" if entry.urls else "hub"
        logger.info("%s[%s]: loaded from %s", entry.name, split, entry.origin(split))
        return ExampleData(entry.name, split, records, source, entry.origin(split))
    roots = _local_roots(local_root)
    for root in roots:
        path = root / entry.local[split]
        if path.exists():
            logger.warning("%s[%s]: %s; using the local copy %s", entry.name, split, reason, path)
            return ExampleData(
                entry.name, split, entry.read_local(path), "local", str(path), reason
            )
    looked = ", ".join(str(r / entry.local[split]) for r in roots[:3])
    more = f" and {len(roots) - 3} more" if len(roots) > 3 else ""
    raise DataNotAvailableError(
        f"example dataset {entry.name}[{split}] is not available: {reason}, and there is no "
        f"local copy (looked for {looked}{more}; set {LOCAL_DATA_ENV} to the folder holding "
        f"{entry.local[split]})"
    )
