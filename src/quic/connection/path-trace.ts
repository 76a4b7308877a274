/**
 * qlog of a connection's paths (draft-ietf-quic-qlog-quic-events): each {@link NetworkPath} is a
 * network tuple with a TupleID — "" for the handshake's (§4.7: the default tuple), then "1", "2",
 * … — announced with `tuple_assigned` when it is created or learns its address, and abandoned with
 * a `tuple_assigned` that carries no endpoint. Probing and migration steps are
 * `migration_state_updated` (§5.20). Only the peer's half of a tuple is known here: the local
 * address belongs to the endpoint's sockets.
 *
 * Exists only while qlog is on: the connection holds a `PathTrace | undefined` and guards calls.
 */
import type { QlogMigrationState, QlogSink } from "../qlog.ts";
import type { NetworkPath } from "./path.ts";

export class PathTrace {
  private nextTupleId = 1;

  constructor(
    private readonly sink: QlogSink,
    handshakePath: NetworkPath,
  ) {
    handshakePath.tupleId = "";
  }

  /** The path's TupleID, given on first use. */
  tupleId(path: NetworkPath): string {
    path.tupleId ??= String(this.nextTupleId++);
    return path.tupleId;
  }

  /** The path exists (or its address became known); `remoteCid` is the connection ID sent there. */
  assigned(path: NetworkPath, remoteCid: Uint8Array | undefined, now: number): void {
    this.sink.tupleAssigned?.({ tupleId: this.tupleId(path), remote: path.remote, remoteCid }, now);
  }

  /** The connection no longer keeps the path. */
  abandoned(path: NetworkPath, now: number): void {
    this.sink.tupleAssigned?.({ tupleId: this.tupleId(path) }, now);
  }

  migration(state: QlogMigrationState, path: NetworkPath, now: number): void {
    this.sink.migrationStateUpdated?.({ state, tupleId: this.tupleId(path), remote: path.remote }, now);
  }
}
