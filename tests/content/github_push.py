"""A push webhook delivery as GitHub sends it for the fake's repository: the headers
and the `webhook-push` body the description's `x-webhooks.push` has (every required
field, with the values of a private repository owned by an organization)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from tests.content.fake_github import (
    API,
    OWNER,
    OWNER_ID,
    OWNER_REPO,
    REPO,
    REPO_ID,
    WEB,
    commit_range,
    git,
    resolve,
)


def push_event(root: Path, sha: str, branch: str = "main", *, before: str | None = None) -> bytes:
    """The body GitHub posts for a push of `branch` to `sha` (from `before`, by
    default the commit's parent), as the description's `webhook-push` has it."""
    if before is None:
        parent = resolve(root, f"{sha}^")
        before = parent or "0" * 40
    pushed = commit_range(root, before, sha) if set(before) != {"0"} else [sha]
    commits = [_push_commit(root, c) for c in pushed]
    full_name = OWNER_REPO
    url = f"{API}/repos/{full_name}"
    owner = {
        "name": OWNER,
        "email": None,
        "login": OWNER,
        "id": OWNER_ID,
        "node_id": "O_kgDOBVwXEQ",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{OWNER_ID}?v=4",
        "gravatar_id": "",
        "url": f"{API}/users/{OWNER}",
        "html_url": f"{WEB}/{OWNER}",
        "followers_url": f"{API}/users/{OWNER}/followers",
        "following_url": f"{API}/users/{OWNER}/following{{/other_user}}",
        "gists_url": f"{API}/users/{OWNER}/gists{{/gist_id}}",
        "starred_url": f"{API}/users/{OWNER}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{API}/users/{OWNER}/subscriptions",
        "organizations_url": f"{API}/users/{OWNER}/orgs",
        "repos_url": f"{API}/users/{OWNER}/repos",
        "events_url": f"{API}/users/{OWNER}/events{{/privacy}}",
        "received_events_url": f"{API}/users/{OWNER}/received_events",
        "type": "Organization",
        "user_view_type": "public",
        "site_admin": False,
    }
    templates = {
        "keys_url": "/keys{/key_id}",
        "collaborators_url": "/collaborators{/collaborator}",
        "issue_events_url": "/issues/events{/number}",
        "assignees_url": "/assignees{/user}",
        "branches_url": "/branches{/branch}",
        "blobs_url": "/git/blobs{/sha}",
        "git_tags_url": "/git/tags{/sha}",
        "git_refs_url": "/git/refs{/sha}",
        "trees_url": "/git/trees{/sha}",
        "statuses_url": "/statuses/{sha}",
        "commits_url": "/commits{/sha}",
        "git_commits_url": "/git/commits{/sha}",
        "comments_url": "/comments{/number}",
        "issue_comment_url": "/issues/comments{/number}",
        "contents_url": "/contents/{+path}",
        "compare_url": "/compare/{base}...{head}",
        "archive_url": "/{archive_format}{/ref}",
        "issues_url": "/issues{/number}",
        "pulls_url": "/pulls{/number}",
        "milestones_url": "/milestones{/number}",
        "notifications_url": "/notifications{?since,all,participating}",
        "labels_url": "/labels{/name}",
        "releases_url": "/releases{/id}",
    }
    plain = {
        "forks_url": "/forks",
        "teams_url": "/teams",
        "hooks_url": "/hooks",
        "events_url": "/events",
        "tags_url": "/tags",
        "languages_url": "/languages",
        "stargazers_url": "/stargazers",
        "contributors_url": "/contributors",
        "subscribers_url": "/subscribers",
        "subscription_url": "/subscription",
        "merges_url": "/merges",
        "downloads_url": "/downloads",
        "deployments_url": "/deployments",
    }
    repository = {
        "id": REPO_ID,
        "node_id": "R_kgDOKbWxAQ",
        "name": REPO,
        "full_name": full_name,
        "private": True,
        "owner": owner,
        "html_url": f"{WEB}/{full_name}",
        "description": "Course content",
        "fork": False,
        "url": f"{WEB}/{full_name}",
        **{key: url + suffix for key, suffix in {**templates, **plain}.items()},
        "created_at": 1700000000,
        "updated_at": "2026-01-05T10:00:00Z",
        "pushed_at": int(time.time()),
        "git_url": f"git://github.com/{full_name}.git",
        "ssh_url": f"git@github.com:{full_name}.git",
        "clone_url": f"{WEB}/{full_name}.git",
        "svn_url": f"{WEB}/{full_name}",
        "homepage": None,
        "size": 812,
        "stargazers_count": 0,
        "watchers_count": 0,
        "language": None,
        "has_issues": True,
        "has_projects": False,
        "has_downloads": True,
        "has_wiki": False,
        "has_pages": False,
        "has_discussions": False,
        "forks_count": 0,
        "mirror_url": None,
        "archived": False,
        "disabled": False,
        "open_issues_count": 0,
        "license": None,
        "allow_forking": False,
        "is_template": False,
        "web_commit_signoff_required": False,
        "topics": [],
        "visibility": "private",
        "forks": 0,
        "open_issues": 0,
        "watchers": 0,
        "default_branch": "main",
        "stargazers": 0,
        "master_branch": "main",
        "organization": OWNER,
        "custom_properties": {},
    }
    sender = {k: v for k, v in owner.items() if k not in ("name", "email")}
    sender.update({"login": "course-author", "id": 90000002, "type": "User"})
    payload = {
        "ref": f"refs/heads/{branch}",
        "before": before,
        "after": sha,
        "repository": repository,
        "pusher": {"name": "course-author", "email": "author@example.org"},
        "organization": {
            "login": OWNER,
            "id": OWNER_ID,
            "node_id": owner["node_id"],
            "url": f"{API}/orgs/{OWNER}",
            "repos_url": f"{API}/orgs/{OWNER}/repos",
            "events_url": f"{API}/orgs/{OWNER}/events",
            "hooks_url": f"{API}/orgs/{OWNER}/hooks",
            "issues_url": f"{API}/orgs/{OWNER}/issues",
            "members_url": f"{API}/orgs/{OWNER}/members{{/member}}",
            "public_members_url": f"{API}/orgs/{OWNER}/public_members{{/member}}",
            "avatar_url": owner["avatar_url"],
            "description": None,
        },
        "sender": sender,
        "created": False,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"{WEB}/{full_name}/compare/{before[:12]}...{sha[:12]}",
        "commits": commits,
        "head_commit": commits[-1] if commits else None,
    }
    return json.dumps(payload).encode()


def _push_commit(root: Path, sha: str) -> dict[str, Any]:
    fmt = "%T%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B"
    tree, an, ae, ad, cn, ce, cd, message = (
        git(root, "show", "-s", f"--format={fmt}", sha).decode().split("\0")
    )
    changes = git(
        root, "diff-tree", "--root", "--no-commit-id", "-r", "--name-status", "-z", sha
    ).decode()
    parts = changes.split("\0")
    lists: dict[str, list[str]] = {"A": [], "M": [], "D": []}
    for letter, path in zip(parts[0::2], parts[1::2], strict=False):
        if path:
            lists.get(letter[:1], lists["M"]).append(path)
    return {
        "id": sha,
        "tree_id": tree,
        "distinct": True,
        "message": message.rstrip("\n"),
        "timestamp": ad,
        "url": f"{WEB}/{OWNER_REPO}/commit/{sha}",
        "author": {"name": an, "email": ae, "date": ad},
        "committer": {"name": cn, "email": ce, "date": cd},
        "added": lists["A"],
        "removed": lists["D"],
        "modified": lists["M"],
    }


def delivery_headers(event: str = "push") -> dict[str, str]:
    """The headers of a webhook delivery, but its signature (the test signs)."""
    return {
        "User-Agent": "GitHub-Hookshot/3f0d2e1",
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),  # a new GUID per delivery, as GitHub sends
        "X-GitHub-Hook-ID": "12312312",
        "X-GitHub-Hook-Installation-Target-ID": str(REPO_ID),
        "X-GitHub-Hook-Installation-Target-Type": "repository",
    }
