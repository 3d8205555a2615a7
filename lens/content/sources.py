"""Where content comes from: a local folder, a local git checkout at a ref, or GitHub.

A source lists a commit's content files (text) and images (`lens.content.files`). Image
bytes are read only when at hand anyway (a tarball, a changed file) or asked for with
`read_assets`: a sync keeps only the images the content embeds.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lens.content.files import (
    MAX_ASSET_BYTES,
    asset_fits,
    digest_folder_assets,
    is_asset,
    list_folder_assets,
    read_folder,
    read_folder_assets,
)
from lens.content.parsing import file_kind
from lens.errors import IntegrationRejected
from lens.integrations.github import COMPARE_FILE_LIMIT, GitHub, GitHubClient
from lens.logging import get_logger

if TYPE_CHECKING:
    import httpx

    from lens.settings import Settings

log = get_logger("lens.content")

BUNDLED_COURSE = Path(__file__).resolve().parents[2] / "examples" / "course"


@dataclass(frozen=True)
class Change:
    """A content file's new text, or an image's new bytes, or an image that changed and
    was not read (`unread`: its bytes are fetched only if the content embeds it); none
    of these: it is gone (an image that grew over the size cap is gone too)."""

    path: str
    text: str | None
    data: bytes | None = None
    unread: bool = False

    @property
    def deleted(self) -> bool:
        return self.text is None and self.data is None and not self.unread


@dataclass
class Tree:
    """What a source holds at one commit."""

    files: dict[str, str] = field(default_factory=dict)  # content file -> text
    # Every image within the size cap -> its bytes, or None when not read (yet).
    assets: dict[str, bytes | None] = field(default_factory=dict)


class ContentSource(Protocol):
    name: str

    async def head(self) -> str:
        """The commit (or content hash) the source is at now."""
        ...

    async def fetch_all(self, commit: str) -> Tree: ...

    async def changes(self, base: str, head: str) -> list[Change] | None:
        """What changed since `base`, or None when only a full read is safe."""
        ...

    async def read_assets(self, commit: str, paths: list[str]) -> dict[str, bytes]:
        """The bytes of these images at `commit`; one that is gone or too large is left out."""
        ...


class FolderSource:
    """A plain folder; its "commit" is a hash of its content files and images."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = f"folder:{root}"
        self._files: dict[str, str] | None = None
        self._assets: dict[str, str] = {}  # path -> sha256

    async def head(self) -> str:
        if not self.root.is_dir():
            raise IntegrationRejected(f"content folder {self.root} does not exist")
        self._files = await asyncio.to_thread(read_folder, self.root)
        paths = await asyncio.to_thread(list_folder_assets, self.root)
        self._assets = await asyncio.to_thread(digest_folder_assets, self.root, paths)
        digest = hashlib.sha256()
        for path, text in sorted(self._files.items()):
            digest.update(path.encode() + b"\0" + text.encode() + b"\0")
        for path, sha in sorted(self._assets.items()):
            digest.update(path.encode() + b"\0" + sha.encode() + b"\0")
        return digest.hexdigest()[:40]

    async def fetch_all(self, commit: str) -> Tree:
        if self._files is None:
            await self.head()
        assert self._files is not None
        return Tree(dict(self._files), dict.fromkeys(self._assets))

    async def changes(self, base: str, head: str) -> list[Change] | None:
        return None  # reading a local folder whole is cheap

    async def read_assets(self, commit: str, paths: list[str]) -> dict[str, bytes]:
        return await asyncio.to_thread(read_folder_assets, self.root, paths)


class GitCheckoutSource:
    """A local git repository read at a ref (branch, tag or commit), not its work tree."""

    def __init__(self, root: Path, ref: str) -> None:
        self.root = root
        self.ref = ref
        self.name = f"git:{root}@{ref}"

    async def _git(self, *args: str, stdin: bytes | None = None) -> bytes:
        proc = await asyncio.create_subprocess_exec(
            "git",
            "-C",
            str(self.root),
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else None,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(stdin)
        if proc.returncode != 0:
            raise IntegrationRejected(f"git {args[0]} failed: {err.decode().strip()}")
        return out

    async def head(self) -> str:
        return (await self._git("rev-parse", "--verify", f"{self.ref}^{{commit}}")).decode().strip()

    async def _cat(self, commit: str, paths: list[str], *, check: bool = False) -> list[bytes]:
        """`git cat-file --batch` (or `--batch-check`): one answer per path, in order; for
        --batch the header line, for --batch-check the line alone."""
        if not paths:
            return []
        request = "".join(f"{commit}:{p}\n" for p in paths).encode()
        out = await self._git("cat-file", "--batch-check" if check else "--batch", stdin=request)
        answers: list[bytes] = []
        pos = 0
        for _ in paths:
            header_end = out.index(b"\n", pos)
            header = out[pos:header_end]
            pos = header_end + 1
            parts = header.split()
            if check or parts[-1] == b"missing" or len(parts) != 3:
                answers.append(header)
                continue
            size = int(parts[2])
            answers.append(header + b"\n" + out[pos : pos + size])
            pos += size + 1
        return answers

    async def _read(self, commit: str, paths: list[str]) -> dict[str, str]:
        answers = await self._cat(commit, paths)
        return {
            p: a.partition(b"\n")[2].decode("utf-8", "replace")
            for p, a in zip(paths, answers, strict=True)
        }

    async def _read_bytes(self, commit: str, paths: list[str]) -> dict[str, bytes]:
        """Images that exist as blobs within the size cap, with their bytes."""
        sizes = await self._cat(commit, paths, check=True)
        fitting: list[str] = []
        for path, line in zip(paths, sizes, strict=True):
            parts = line.split()
            if len(parts) == 3 and parts[1] == b"blob" and asset_fits(path, int(parts[2])):
                fitting.append(path)
        answers = await self._cat(commit, fitting)
        return {p: a.partition(b"\n")[2] for p, a in zip(fitting, answers, strict=True)}

    async def fetch_all(self, commit: str) -> Tree:
        listing = await self._git("ls-tree", "-r", "-z", "-l", commit)
        texts: list[str] = []
        assets: dict[str, bytes | None] = {}
        for entry in listing.decode().split("\0"):
            info, _, path = entry.partition("\t")
            if not path:
                continue
            mode, kind, _sha, size = info.split()
            if kind != "blob":
                continue
            if file_kind(path):
                texts.append(path)
            elif is_asset(path) and mode != "120000" and asset_fits(path, int(size)):
                assets[path] = None  # read when the content embeds it
        return Tree(await self._read(commit, texts), assets)

    async def changes(self, base: str, head: str) -> list[Change] | None:
        try:
            raw = await self._git("diff", "--name-status", "-z", "--no-renames", base, head)
        except IntegrationRejected as exc:
            _full_read(self.name, base, head, "git_diff_failed", error=str(exc)[:300])
            return None
        parts = raw.decode().split("\0")
        changed: list[Change] = []
        texts: list[str] = []
        images: list[str] = []
        for status, path in zip(parts[0::2], parts[1::2], strict=False):
            if not path:
                continue
            wanted = texts if file_kind(path) else images if is_asset(path) else None
            if wanted is None:
                continue
            if status.startswith("D"):
                changed.append(Change(path, None))
            else:
                wanted.append(path)
        contents = await self._read(head, texts)
        changed.extend(Change(p, t) for p, t in contents.items())
        data = await self._read_bytes(head, images)
        changed.extend(Change(p, None, data.get(p)) for p in images)
        return changed

    async def read_assets(self, commit: str, paths: list[str]) -> dict[str, bytes]:
        return await self._read_bytes(commit, [p for p in paths if is_asset(p)])


class GitHubSource:
    def __init__(self, github: GitHub, repo: str, branch: str) -> None:
        self.github = github
        self.repo = repo
        self.branch = branch
        self.name = f"github:{repo}@{branch}"

    async def head(self) -> str:
        return await self.github.head_commit(self.repo, self.branch)

    async def fetch_all(self, commit: str) -> Tree:
        archive = await self.github.tarball(self.repo, commit)
        return await asyncio.to_thread(_read_tarball, archive)

    async def changes(self, base: str, head: str) -> list[Change] | None:
        """What compare says changed; None (logged, with the reason) when its list
        cannot be trusted: the branch moved back or was rewritten, the base commit is
        gone, or the list may be cut short. A rate limit raises: a full read would
        meet the same limit, so the sync is retried later instead."""
        comparison = await self.github.compare(self.repo, base, head)
        if comparison.files is None:
            _full_read(
                self.name, base, head, comparison.reason or "unknown", status=comparison.status
            )
            return None
        changed: list[Change] = []
        for f in comparison.files:
            previous = f.previous_path
            if f.status == "renamed" and previous and (file_kind(previous) or is_asset(previous)):
                changed.append(Change(previous, None))
            if file_kind(f.path) is not None:
                if f.status == "removed":
                    changed.append(Change(f.path, None))
                elif f.status != "unchanged":
                    text = await self.github.file_text(self.repo, f.path, head)
                    changed.append(Change(f.path, text))
            elif is_asset(f.path):
                if f.status == "removed":
                    changed.append(Change(f.path, None))
                elif f.status != "unchanged":
                    # Read later, and only if the content embeds it: a vault's pictures
                    # nothing shows cost no requests.
                    changed.append(Change(f.path, None, unread=True))
        return changed

    async def _asset(self, path: str, ref: str) -> bytes | None:
        data = await self.github.file_bytes(self.repo, path, ref, limit=MAX_ASSET_BYTES)
        if data is None:
            log.warning("content.asset.too_large", path=path, limit=MAX_ASSET_BYTES)
        return data

    async def read_assets(self, commit: str, paths: list[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for path in paths:
            if not is_asset(path):
                continue
            try:
                data = await self._asset(path, commit)
            except IntegrationRejected:  # gone at this commit
                continue
            if data is not None:
                found[path] = data
        return found


_FULL_READ_WHY = {
    "behind": "the branch moved back to an older commit",
    "diverged": "the branch was rewritten (a force-push): the snapshot's commit is not in it",
    "base_not_found": "GitHub no longer has the snapshot's commit",
    "truncated": f"compare lists at most {COMPARE_FILE_LIMIT} files: the list may be cut short",
    "no_files": "compare gave no list of files",
    "status": "compare answered an unknown status",
    "git_diff_failed": "git cannot diff from the snapshot's commit",
}


def _full_read(source: str, base: str, head: str, reason: str, **fields: object) -> None:
    log.info(
        "content.sync.full_read",
        source=source,
        base=base[:12],
        head=head[:12],
        reason=reason,
        why=_FULL_READ_WHY.get(reason, reason),
        **fields,
    )


def _read_tarball(archive: bytes) -> Tree:
    tree = Tree()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
        for member in tar:
            if not member.isfile():
                continue
            # GitHub puts everything under one top folder, "<owner>-<repo>-<sha>/".
            _, _, path = member.name.partition("/")
            if not path:
                continue
            if file_kind(path) is not None:
                handle = tar.extractfile(member)
                if handle is not None:
                    tree.files[path] = handle.read().decode("utf-8", errors="replace")
            elif is_asset(path) and asset_fits(path, member.size):
                handle = tar.extractfile(member)
                if handle is not None:
                    tree.assets[path] = handle.read()
    return tree


def source_from_settings(settings: Settings, http: httpx.AsyncClient) -> ContentSource:
    """CONTENT_DIR wins over CONTENT_REPO; with neither, the bundled example course."""
    if settings.content_dir:
        root = Path(settings.content_dir).expanduser().resolve()
        if settings.content_ref:
            return GitCheckoutSource(root, settings.content_ref)
        return FolderSource(root)
    if settings.content_repo:
        client = GitHubClient(http, token=settings.github_token)
        return GitHubSource(client, settings.content_repo, settings.educational_content_branch)
    return FolderSource(BUNDLED_COURSE)
