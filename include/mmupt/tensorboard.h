/* TensorBoard event files, written by hand: no TensorFlow, no protobuf library.
 *
 * A writer owns one file `events.out.tfevents.<unix time>.<hostname>` in a log directory. The file
 * is a sequence of TFRecord records, each holding one serialized `tensorflow.Event` protocol
 * buffer: first the `file_version: "brain.Event:2"` event, then one event per scalar. TensorBoard
 * reads every such file in the directory (`tensorboard --logdir DIR`). docs/tensorboard.md has the
 * byte layout and how it was checked against the real TensorBoard reader.
 *
 * I/O failures (an unwritable directory, a full disk) are input errors: the functions return -1
 * and fill `err`; nothing here exits or prints. */
#ifndef MMUPT_TENSORBOARD_H
#define MMUPT_TENSORBOARD_H

#include <stdint.h>

#include "mmupt/err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest tag accepted, in bytes. Longer tags are refused, never cut. */
#define TB_TAG_MAX 256

struct tb_writer; /* opaque */

/* Create logdir (and its parents) if missing and start a new event file in it, writing the
 * file-version event. Never overwrites an existing file: if two writers start in the same second
 * on the same host, the second file gets a ".1" suffix (".2", ...). On failure *w is NULL. */
int tb_open(struct tb_writer **w, const char *logdir, struct mmupt_err *err);

/* Append one scalar event (wall time now, `step`, `tag` = value as float32: TensorBoard's
 * simple_value is a float). The tag must be non-empty valid UTF-8 of at most TB_TAG_MAX bytes.
 * The event goes to a stdio buffer; call tb_flush once per training step so a crash loses little. */
int tb_scalar(struct tb_writer *w, const char *tag, int64_t step, double value, struct mmupt_err *err);

/* Push buffered events to the file; a full disk shows up here at the latest. */
int tb_flush(struct tb_writer *w, struct mmupt_err *err);

/* Flush and close; NULL is allowed. Errors are lost: call tb_flush first to see them. */
void tb_close(struct tb_writer *w);

/* The path of the writer's event file (valid until tb_close). */
const char *tb_path(const struct tb_writer *w);

#ifdef __cplusplus
}
#endif

#endif
