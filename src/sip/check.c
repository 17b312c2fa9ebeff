/* check.c: message-level rules applied before a server acts (RFC 3261 §8.2, §16.3). */
#include "sip/msg.h"

static int reject(struct sip_parse_error *err, const struct sip_msg *m, const char *at,
		  const char *why, int status)
{
	if (err) {
		err->offset = at ? (size_t)(at - m->raw.s) : 0;
		err->reason = why;
		err->status = status;
	}
	return status;
}

/* rfc1123-date = wkday "," SP date1 SP time SP "GMT" (RFC 3261 §20.17):
 * "Fri, 01 Jan 2010 16:00:00 GMT". Only GMT is allowed. */
static bool date_valid(struct str v)
{
	static const char *days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
	static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	if (v.len != 29)
		return false;
	bool ok = false;
	for (int i = 0; i < 7; i++)
		ok |= memcmp(v.s, days[i], 3) == 0;
	if (!ok || v.s[3] != ',' || v.s[4] != ' ' || v.s[7] != ' ' || v.s[11] != ' ' ||
	    v.s[16] != ' ' || v.s[19] != ':' || v.s[22] != ':' || v.s[25] != ' ')
		return false;
	ok = false;
	for (int i = 0; i < 12; i++)
		ok |= memcmp(v.s + 8, months[i], 3) == 0;
	static const int digits[] = {5, 6, 12, 13, 14, 15, 17, 18, 20, 21, 23, 24};
	for (size_t i = 0; i < sizeof(digits) / sizeof(digits[0]); i++)
		if (!ascii_is_digit(v.s[digits[i]]))
			return false;
	return ok && memcmp(v.s + 26, "GMT", 3) == 0;
}

int sip_msg_check(const struct sip_msg *m, struct sip_parse_error *err)
{
	/* §8.2.1 / §21.5.6: only SIP/2.0 is served. */
	if (!str_case_eq(m->version, STR_LIT("SIP/2.0"))) /* §7.1: case-insensitive */
		return reject(err, m, m->version.s, "unsupported SIP version", 505);
	/* §8.1.1: To, From, CSeq, Call-ID and Via are mandatory. Max-Forwards
	 * is not required of RFC 2543 peers (RFC 4475 §3.4.1). */
	static const struct {
		enum sip_hdr_id id;
		const char *missing;
		const char *repeated;
	} single[] = {
		{SIP_HDR_TO, "missing To", "more than one To"},
		{SIP_HDR_FROM, "missing From", "more than one From"},
		{SIP_HDR_CALL_ID, "missing Call-ID", "more than one Call-ID"},
		{SIP_HDR_CSEQ, "missing CSeq", "more than one CSeq"},
		{SIP_HDR_MAX_FORWARDS, NULL, "more than one Max-Forwards"},
	};
	for (size_t i = 0; i < sizeof(single) / sizeof(single[0]); i++) {
		const struct sip_hdr *h = m->hdr_first[single[i].id];
		if (!h && single[i].missing)
			return reject(err, m, m->raw.s + m->start_line.len, single[i].missing, 400);
		if (h && h->next_same)
			return reject(err, m, h->next_same->line.s, single[i].repeated, 400);
	}
	if (!m->via)
		return reject(err, m, m->raw.s + m->start_line.len, "missing Via", 400);
	if (m->is_request) {
		/* §8.2 / RFC 4475 §3.1.2.17: CSeq method must equal the method. */
		if (!str_eq(m->cseq_method, m->method))
			return reject(err, m, m->cseq_method.s, "CSeq method does not match request method",
				      400);
		/* §19.1.1: the headers component is not allowed in a Request-URI
		 * (RFC 4475 §3.1.2.11). */
		if (m->ruri.headers.len)
			return reject(err, m, m->ruri.headers.s, "headers in Request-URI", 400);
	}
	const struct sip_hdr *date = m->hdr_first[SIP_HDR_DATE];
	if (date && !date_valid(date->value))
		return reject(err, m, date->value.s, "bad Date (rfc1123-date in GMT required)", 400);
	return 0;
}
