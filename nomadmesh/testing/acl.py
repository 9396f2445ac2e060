"""Nomad's ACL token and policy endpoints (command/agent/acl_endpoint.go, nomad/acl_endpoint.go).

Tokens and policies live in the emulator's state store (tables `acl_token`, `acl_policy`), so
their indexes and blocking queries behave as every other table's. What a token may do is
simplified: a management token may do everything, a client token only read itself
(`/v1/acl/token/self`); policy rules are stored but neither parsed nor evaluated.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from nomadmesh.testing._gotypes import check_fields
from nomadmesh.testing._http import (
    Blocking,
    HttpError,
    Request,
    Response,
    bearer_token,
    decode_json,
)
from nomadmesh.testing.server.server import Server
from nomadmesh.testing.server.state import Txn
from nomadmesh.testing.watch import WatchKey

Answer = Callable[[Any, int], Response]
Block = Callable[[Request, Iterable[WatchKey], Callable[[], tuple[int, Any]]], Response | Blocking]

MANAGEMENT, CLIENT = "management", "client"
_POLICY_NAME = re.compile(r"^[a-zA-Z0-9-]{1,128}$")  # structs.ValidPolicyName (structs/acl.go)
_TOKEN_FIELDS = ("AccessorID", "Name", "Type", "Policies", "Roles", "Global", "Hash",
                 "CreateTime", "ExpirationTime", "CreateIndex", "ModifyIndex")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _hash(obj: dict[str, Any], *fields: str) -> str:
    """A content hash, base64 as Go marshals []byte (structs ACLToken/ACLPolicy.SetHash)."""
    digest = hashlib.blake2b(repr([obj.get(f) for f in fields]).encode(), digest_size=32)
    return base64.b64encode(digest.digest()).decode()


def _multierror(errors: list[str]) -> str:
    """go-multierror's text, as `token 0 invalid: ...` wraps it."""
    items = "".join(f"\t* {e}\n" for e in errors)
    word = "error" if len(errors) == 1 else "errors"
    return f"{len(errors)} {word} occurred:\n{items}\n"


def _body(req: Request) -> dict[str, Any]:
    body = decode_json(req.body) if req.body.strip() else {}
    if not isinstance(body, dict):
        raise HttpError(400, "json: cannot unmarshal array into Go value of type "
                             "structs.ACLToken")
    return body


class AclEndpoints:
    """The /v1/acl/{bootstrap,token,tokens,policy,policies} routes and token lookup."""

    def __init__(self, server: Server, answer: Answer, blocking: Block, enabled: bool) -> None:
        self.enabled = enabled
        self.server = server
        self.answer = answer
        self.blocking = blocking

    def routes(self, route: Callable[[str, str, Any], None]) -> None:
        """Register the routes (command/agent/http.go:437-445)."""
        def add(methods: str, path: str, handler: Callable[[Request], Any]) -> None:
            def checked(req: Request) -> Any:
                if not self.enabled:  # every ACL RPC: aclDisabled (nomad/acl_endpoint.go:38)
                    raise HttpError(400, "ACL support disabled")
                return handler(req)

            route(methods, path, checked)

        add("PUT POST", "/v1/acl/bootstrap", self._h_bootstrap)
        add("GET", "/v1/acl/tokens", self._h_tokens)
        add("GET", "/v1/acl/token/self", self._h_self)
        add("PUT POST", "/v1/acl/token", self._h_token_create)
        add("GET DELETE PUT POST", "/v1/acl/token/([^/]*)", self._h_token)
        add("GET", "/v1/acl/policies", self._h_policies)
        add("GET DELETE PUT POST", "/v1/acl/policy/([^/]*)", self._h_policy)

    # --- tokens -----------------------------------------------------------------------------

    def token_by_secret(self, secret: str) -> dict[str, Any] | None:
        """The token whose SecretID is `secret` (state.ACLTokenBySecretID)."""
        return next((t for t in self.server.state.snapshot().all("acl_token")
                     if t["SecretID"] == secret), None)

    def bootstrap(self, secret: str | None = None) -> tuple[dict[str, Any], int]:
        """ACL.Bootstrap (nomad/acl_endpoint.go:442): the one global management token."""
        def apply(txn: Txn) -> tuple[dict[str, Any], int]:
            if next(iter(txn.all("acl_token")), None) is not None or txn.get(
                    "acl_bootstrap", "done") is not None:
                reset = txn.get("acl_bootstrap", "done") or 0
                raise HttpError(400, f"ACL bootstrap already done (reset index: {reset})")
            token = self._store(txn, {"Name": "Bootstrap Token", "Type": MANAGEMENT,
                                      "Global": True, "Policies": None,
                                      "SecretID": secret or str(uuid.uuid4())}, None)
            txn.put("acl_bootstrap", "done", txn.index)
            return token, txn.index

        return self.server.write(apply)

    def _store(self, txn: Txn, body: dict[str, Any], existing: dict[str, Any] | None
               ) -> dict[str, Any]:
        token = {
            "AccessorID": existing["AccessorID"] if existing else str(uuid.uuid4()),
            "SecretID": existing["SecretID"] if existing else body.get("SecretID")
            or str(uuid.uuid4()),
            "Name": body.get("Name") or "", "Type": body.get("Type") or "",
            "Policies": body.get("Policies") or None, "Roles": body.get("Roles") or None,
            "Global": bool(body.get("Global")),
            "CreateTime": existing["CreateTime"] if existing else _now(),
            "ExpirationTime": None, "ExpirationTTL": 0,
            "CreateIndex": existing["CreateIndex"] if existing else txn.index,
            "ModifyIndex": txn.index,
        }
        token["Hash"] = _hash(token, "Name", "Type", "Policies", "Roles", "Global")
        txn.put("acl_token", token["AccessorID"], token)
        return token

    def _upsert(self, body: dict[str, Any], accessor: str) -> Response:
        """ACL.UpsertTokens with one token (nomad/acl_endpoint.go:558, upsertTokens :618)."""
        check_fields(body, "ACLToken", {"AccessorID": "string", "SecretID": "string",
                                        "Name": "string", "Type": "string",
                                        "Policies": "[]string", "Global": "bool"})
        def apply(txn: Txn) -> tuple[dict[str, Any], int]:
            existing = txn.get("acl_token", accessor) if accessor else None
            if accessor and existing is None:
                raise HttpError(400, f"cannot find token {accessor}")
            errors = self._token_problems(body, existing)
            if errors:
                raise HttpError(400, f"token 0 invalid: {_multierror(errors)}")
            return self._store(txn, body, existing), txn.index

        token, index = self.server.write(apply)
        return self.answer(token, index)

    @staticmethod
    def _token_problems(body: dict[str, Any], existing: dict[str, Any] | None) -> list[str]:
        """ACLToken.Validate (nomad/structs/acl.go:757), without the expiration rules."""
        errors = []
        if len(str(body.get("Name") or "")) > 256:
            errors.append("token name too long")
        kind = body.get("Type")
        if kind == CLIENT:
            if not body.get("Policies") and not body.get("Roles"):
                errors.append("client token missing policies or roles")
        elif kind == MANAGEMENT:
            if body.get("Policies") or body.get("Roles"):
                errors.append("management token cannot be associated with policies or roles")
        else:
            errors.append("token type must be client or management")
        if existing is not None and existing["Global"] != bool(body.get("Global")):
            errors.append("cannot toggle global mode")
        return errors

    def _h_bootstrap(self, req: Request) -> Response:
        body = _body(req)
        check_fields(body, "ACLTokenBootstrapRequest", {"BootstrapSecret": "string"})
        secret = str(body.get("BootstrapSecret") or "")
        if secret and not re.fullmatch(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}", secret):
            raise HttpError(400, "invalid acl token")
        token, index = self.bootstrap(secret or None)
        return self.answer(token, index)

    def _h_tokens(self, req: Request) -> Response | Blocking:
        def compute() -> tuple[int, Any]:
            snap = self.server.state.snapshot()
            rows = sorted(snap.all("acl_token"), key=lambda t: t["CreateIndex"])
            return snap.table_index("acl_token"), [{k: t[k] for k in _TOKEN_FIELDS}
                                                   for t in rows]

        return self.blocking(req, [("acl_token",)], compute)

    def _h_self(self, req: Request) -> Response:
        token = bearer_token(req, "X-Nomad-Token")
        found = self.token_by_secret(token) if token else None
        if found is None:
            raise HttpError(404, "ACL token not found")
        return self.answer(found, int(found["ModifyIndex"]))

    def _h_token_create(self, req: Request) -> Response:
        body = _body(req)
        if body.get("AccessorID"):
            return self._upsert(body, str(body["AccessorID"]))
        return self._upsert(body, "")

    def _h_token(self, req: Request) -> Response | Blocking:
        accessor = req.params[0]
        if not accessor:
            raise HttpError(400, "Missing Token Accessor")
        if req.method == "GET":
            def compute() -> tuple[int, Any]:
                token = self.server.state.snapshot().get("acl_token", accessor)
                if token is None:
                    raise HttpError(404, "ACL token not found")
                return int(token["ModifyIndex"]), token

            return self.blocking(req, [("acl_token", accessor)], compute)
        if req.method == "DELETE":
            def delete(txn: Txn) -> int:
                if txn.get("acl_token", accessor) is None:
                    raise HttpError(400, f"Cannot delete nonexistent tokens: {accessor}")
                txn.delete("acl_token", accessor)
                return txn.index

            return self.answer(None, self.server.write(delete))
        body = _body(req)
        check_fields(body, "ACLToken", {"AccessorID": "string"})
        if body.get("AccessorID") != accessor:
            raise HttpError(400, "ACL token accessor does not match request path")
        return self._upsert(body, accessor)

    # --- policies ---------------------------------------------------------------------------

    def _h_policies(self, req: Request) -> Response | Blocking:
        def compute() -> tuple[int, Any]:
            snap = self.server.state.snapshot()
            rows = sorted(snap.all("acl_policy"), key=lambda p: p["Name"])
            return snap.table_index("acl_policy"), [
                {k: p[k] for k in ("Name", "Description", "JobACL", "Hash", "CreateIndex",
                                   "ModifyIndex")} for p in rows]

        return self.blocking(req, [("acl_policy",)], compute)

    def _h_policy(self, req: Request) -> Response | Blocking:
        name = req.params[0]
        if not name:
            raise HttpError(400, "Missing Policy Name")
        if req.method == "GET":
            def compute() -> tuple[int, Any]:
                policy = self.server.state.snapshot().get("acl_policy", name)
                if policy is None:
                    raise HttpError(404, "ACL policy not found")
                return int(policy["ModifyIndex"]), policy

            return self.blocking(req, [("acl_policy", name)], compute)
        if req.method == "DELETE":
            def delete(txn: Txn) -> int:
                txn.delete("acl_policy", name)
                return txn.index

            return self.answer(None, self.server.write(delete))
        body = _body(req)
        check_fields(body, "ACLPolicy", {"Name": "string", "Description": "string",
                                         "Rules": "string"})
        if body.get("Name") != name:
            raise HttpError(400, "ACL policy name does not match request path")
        errors = []
        if not _POLICY_NAME.match(name):
            errors.append(f"invalid name '{name}'")
        if len(str(body.get("Description") or "")) > 256:
            errors.append("description longer than 256")
        if errors:
            raise HttpError(400, f"policy 0 invalid: {_multierror(errors)}")

        def apply(txn: Txn) -> int:
            old = txn.get("acl_policy", name)
            policy = {"Name": name, "Description": body.get("Description") or "",
                      "Rules": body.get("Rules") or "", "JobACL": body.get("JobACL"),
                      "CreateIndex": old["CreateIndex"] if old else txn.index,
                      "ModifyIndex": txn.index}
            policy["Hash"] = _hash(policy, "Name", "Description", "Rules", "JobACL")
            txn.put("acl_policy", name, policy)
            return txn.index

        return self.answer(None, self.server.write(apply))
