"""A small Iceberg REST catalog for the tests: the REST calls a writer makes (config, OAuth2
client credentials, namespaces, load, create, commit), served over pyiceberg's SqlCatalog, which
checks each commit's requirements and writes the metadata files (to the local folder or S3, as
the catalog's properties say). No REST catalog server is installable here (they are JVM or
container images), so this is the test's own; pyiceberg's RestCatalog reads through it too.

Use: `server = serve(catalog_properties, credential="id:secret", prefix="cat")`, then
`server.uri`; `server.shutdown()` at the end.
"""
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import (CommitFailedException, NamespaceAlreadyExistsError, NoSuchTableError,
                                  TableAlreadyExistsError)
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import CommitTableRequest

TOKEN = "test-token-of-the-rest-catalog"


def serve(catalog_properties, credential, prefix="cat"):
    catalog = SqlCatalog("rest", **catalog_properties)
    lock = threading.Lock()
    client_id, secret = credential.split(":", 1)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def error(self, status, kind, message):
            self.answer(status, {"error": {"message": message, "type": kind, "code": status}})

        def body(self):
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def authorised(self):
            if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                return True
            self.error(401, "NotAuthorizedException", "no valid bearer token")
            return False

        def table(self, table):
            metadata = json.loads(table.metadata.model_dump_json(by_alias=True, exclude_none=True))
            return {"metadata-location": table.metadata_location, "metadata": metadata, "config": {}}

        def do_GET(self):  # noqa: N802
            path = urllib.parse.urlparse(self.path).path
            if path == "/v1/config":
                return self.answer(200, {"defaults": {}, "overrides": {"prefix": prefix}})
            if not self.authorised():
                return None
            m = re.fullmatch(rf"/v1/{prefix}/namespaces/([^/]+)/tables/([^/]+)", path)
            if not m:
                return self.error(404, "NotFound", path)
            namespace, name = (urllib.parse.unquote(g).replace("\x1f", ".") for g in m.groups())
            with lock:
                try:
                    return self.answer(200, self.table(catalog.load_table((namespace, name))))
                except NoSuchTableError as e:
                    return self.error(404, "NoSuchTableException", str(e))

        def do_POST(self):  # noqa: N802
            path = urllib.parse.urlparse(self.path).path
            body = self.body()
            if path == "/v1/oauth/tokens":
                form = urllib.parse.parse_qs(body.decode())
                if form.get("client_id") == [client_id] and form.get("client_secret") == [secret]:
                    return self.answer(200, {"access_token": TOKEN, "token_type": "bearer", "expires_in": 3600})
                return self.error(401, "NotAuthorizedException", "wrong client credentials")
            if not self.authorised():
                return None
            request = json.loads(body or b"{}")
            with lock:
                if path == f"/v1/{prefix}/namespaces":
                    try:
                        catalog.create_namespace(tuple(request["namespace"]))
                        return self.answer(200, {"namespace": request["namespace"], "properties": {}})
                    except NamespaceAlreadyExistsError as e:
                        return self.error(409, "AlreadyExistsException", str(e))
                m = re.fullmatch(rf"/v1/{prefix}/namespaces/([^/]+)/tables(?:/([^/]+))?", path)
                if not m:
                    return self.error(404, "NotFound", path)
                namespace = urllib.parse.unquote(m.group(1)).replace("\x1f", ".")
                if m.group(2) is None:
                    try:
                        spec = request.get("partition-spec")
                        table = catalog.create_table((namespace, request["name"]), schema=Schema.model_validate(request["schema"]),
                                                     location=request.get("location"), properties=request.get("properties") or {},
                                                     partition_spec=PartitionSpec.model_validate(spec) if spec else UNPARTITIONED_PARTITION_SPEC)
                        return self.answer(200, self.table(table))
                    except TableAlreadyExistsError as e:
                        return self.error(409, "AlreadyExistsException", str(e))
                name = urllib.parse.unquote(m.group(2))
                try:
                    table = catalog.load_table((namespace, name))
                except NoSuchTableError as e:
                    return self.error(404, "NoSuchTableException", str(e))
                commit = CommitTableRequest.model_validate(request)
                try:
                    response = catalog.commit_table(table, commit.requirements, commit.updates)
                except CommitFailedException as e:
                    return self.error(409, "CommitFailedException", str(e))
                metadata = json.loads(response.metadata.model_dump_json(by_alias=True, exclude_none=True))
                return self.answer(200, {"metadata-location": response.metadata_location, "metadata": metadata})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.uri = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
