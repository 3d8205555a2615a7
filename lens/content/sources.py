"""Where content comes from: a local folder, a local git checkout at a ref, or GitHub."""

from __future__ import annotations

import asyncio
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lens.content.files import read_folder
from lens.content.parsing import file_kind
from lens.errors import IntegrationRejected
from lens.integrations.github import GitHub, GitHubClient

if TYPE_CHECKING:
    import httpx

    from lens.settings import Settings

BUNDLED_COURSE = Path(__file__).resolve().parents[2] / "examples" / "course"


@dataclass(frozen=True)
class Change:
    path: str
    text: str | None  # None: the file was deleted


class ContentSource(Protocol):
    name: str

    async def head(self) -> str:
        """The commit (or content hash) the source is at now."""
        ...

    async def fetch_all(self, commit: str) -> dict[str, str]: ...

    async def changes(self, base: str, head: str) -> list[Change] | None:
        """What changed since `base`, or None when only a full read is safe."""
        ...


class FolderSource:
    """A plain folder; its "commit" is a hash of its content files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = f"folder:{root}"
        self._files: dict[str, str] | None = None

    async def head(self) -> str:
        if not self.root.is_dir():
            raise IntegrationRejected(f"content folder {self.root} does not exist")
        self._files = await asyncio.to_thread(read_folder, self.root)
        digest = hashlib.sha256()
        for path, text in sorted(self._files.items()):
            digest.update(path.encode() + b"\0" + text.encode() + b"\0")
        return digest.hexdigest()[:40]

    async def fetch_all(self, commit: str) -> dict[str, str]:
        if self._files is None:
            await self.head()
        assert self._files is not None
        return dict(self._files)

    async def changes(self, base: str, head: str) -> list[Change] | None:
        return None  # reading a local folder whole is cheap


class GitCheckoutSource:
    """A local git repository read at a ref (branch, tag or commit), not its work tree."""

    def __init__(self, root: Path, ref: str) -> None:
        self.root = root
        self.ref = ref
        self.name = f"git:{root}@{ref}"

    async def _git(self, *args: str) -> bytes:
        proc = await asyncio.create_subprocess_exec(
            "git",
            "-C",
            str(self.root),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise IntegrationRejected(f"git {args[0]} failed: {err.decode().strip()}")
        return out

    async def head(self) -> str:
        return (await self._git("rev-parse", "--verify", f"{self.ref}^{{commit}}")).decode().strip()

    async def _read(self, commit: str, paths: list[str]) -> dict[str, str]:
        if not paths:
            return {}
        request = "".join(f"{commit}:{p}\n" for p in paths).encode()
        proc = await asyncio.create_subprocess_exec(
            "git",
            "-C",
            str(self.root),
            "cat-file",
            "--batch",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate(request)
        files: dict[str, str] = {}
        pos = 0
        for path in paths:
            header_end = out.index(b"\n", pos)
            header = out[pos:header_end].split()
            size = int(header[2])
            files[path] = out[header_end + 1 : header_end + 1 + size].decode("utf-8", "replace")
            pos = header_end + 1 + size + 1
        return files

    async def fetch_all(self, commit: str) -> dict[str, str]:
        listing = await self._git("ls-tree", "-r", "-z", "--name-only", commit)
        paths = [p for p in listing.decode().split("\0") if p and file_kind(p)]
        return await self._read(commit, paths)

    async def changes(self, base: str, head: str) -> list[Change] | None:
        try:
            raw = await self._git("diff", "--name-status", "-z", "--no-renames", base, head)
        except IntegrationRejected:
            return None
        parts = raw.decode().split("\0")
        changed: list[Change] = []
        wanted: list[str] = []
        for status, path in zip(parts[0::2], parts[1::2], strict=False):
            if not path or file_kind(path) is None:
                continue
            if status.startswith("D"):
                changed.append(Change(path, None))
            else:
                wanted.append(path)
        texts = await self._read(head, wanted)
        changed.extend(Change(p, t) for p, t in texts.items())
        return changed


class GitHubSource:
    def __init__(self, github: GitHub, repo: str, branch: str) -> None:
        self.github = github
        self.repo = repo
        self.branch = branch
        self.name = f"github:{repo}@{branch}"

    async def head(self) -> str:
        return await self.github.head_commit(self.repo, self.branch)

    async def fetch_all(self, commit: str) -> dict[str, str]:
        archive = await self.github.tarball(self.repo, commit)
        return await asyncio.to_thread(_read_tarball, archive)

    async def changes(self, base: str, head: str) -> list[Change] | None:
        files = await self.github.compare(self.repo, base, head)
        if files is None:
            return None
        changed: list[Change] = []
        for f in files:
            if f.status == "renamed" and f.previous_path and file_kind(f.previous_path):
                changed.append(Change(f.previous_path, None))
            if file_kind(f.path) is None:
                continue
            if f.status == "removed":
                changed.append(Change(f.path, None))
            elif f.status != "unchanged":
                changed.append(Change(f.path, await self.github.file_text(self.repo, f.path, head)))
        return changed


def _read_tarball(archive: bytes) -> dict[str, str]:
    files: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
        for member in tar:
            if not member.isfile():
                continue
            # GitHub puts everything under one top folder, "<owner>-<repo>-<sha>/".
            _, _, path = member.name.partition("/")
            if not path or file_kind(path) is None:
                continue
            handle = tar.extractfile(member)
            if handle is not None:
                files[path] = handle.read().decode("utf-8", errors="replace")
    return files


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
