/* binding.h: what every location back end shares: the rules of one AOR's
 * binding set (RFC 3261 §10.3, RFC 5626 §6) as pure functions over an
 * array, and the text form of one binding (snapshot file, Redis value). */
#ifndef SIPSD_STORE_BINDING_H
#define SIPSD_STORE_BINDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/location.h"

/* RFC 5626 §6: with +sip.instance and reg-id on both, the pair identifies
 * the binding; otherwise the Contact URI does (RFC 3261 §10.3 step 7). */
bool loc_binding_same(const struct loc_binding *x, const struct loc_binding *y);

/* Apply one Contact of a REGISTER to the bindings `arr[0..*count)` of an
 * AOR: drop the expired ones, then refresh, remove (expires 0) or add `b`.
 * `cap` must leave room for one more binding than *count or the limit
 * (LOC_MAX_BINDINGS_PER_AOR) whichever is smaller. Returns LOC_UPDATED,
 * LOC_OUT_OF_ORDER (same Call-ID, CSeq not higher: §10.3 step 7) or
 * LOC_TOO_MANY; the array is unchanged on LOC_OUT_OF_ORDER except for
 * expired bindings dropped. */
enum loc_update_result loc_bindings_apply(struct loc_binding *arr, unsigned *count, unsigned cap,
					  const struct loc_binding *b, uint32_t expires,
					  int64_t now);

/* Contact: * (§10.3 step 6): false when a binding has the same Call-ID
 * and a CSeq at least as high (the request is out of order). */
bool loc_bindings_may_remove_all(const struct loc_binding *arr, unsigned count,
				 const char *call_id, size_t call_id_len, uint32_t cseq);

/* Sort by descending q (RFC 3261 §16.6 order of forking). */
void loc_bindings_sort(struct loc_binding *arr, unsigned count);

/* The binding's name inside its AOR: "i:INSTANCE:REGID" for an outbound
 * binding, else "c:CONTACT". Unique within one AOR's set. Returns the
 * length or -EMSGSIZE. */
int loc_binding_key(const struct loc_binding *b, char *out, size_t cap);

/* The owner of a binding's flow, "NODE:WORKER:CONNID", the prefix of its
 * text form (a Redis script matches it without parsing the rest). */
int loc_flow_owner(const struct loc_flow *f, char *out, size_t cap);

/* Text form: "NODE:WORKER:CONNID|" then every field as a netstring
 * ("LEN:BYTES,"), binary-safe. The UDP socket is not kept (it belongs to
 * one process); decoding sets it to -1. Returns the length, -EMSGSIZE. */
#define LOC_BINDING_TEXT_MAX 2048
int loc_binding_encode(const struct loc_binding *b, char *out, size_t cap);

/* One netstring ("LEN:BYTES,"), the framing of the text form and of the
 * snapshot file. _put writes it at `out` and returns its length, or
 * -EMSGSIZE when `cap` is too small (nothing usable written). _next reads
 * the one at *p (before `end`), moves *p past it, and returns false for
 * anything malformed or longer than LOC_BINDING_TEXT_MAX. */
int loc_netstring_put(char *out, size_t cap, const char *d, size_t n);
bool loc_netstring_next(const char **p, const char *end, const char **d, size_t *n);

/* Parse the text form. Returns 0 or -EINVAL (anything malformed, a field
 * over its limit, an unknown version). */
int loc_binding_decode(const char *s, size_t len, struct loc_binding *b);

#endif
