/* chars.h: RFC 3261 §25.1 character classes as a lookup table. */
#ifndef SIPSD_SIP_CHARS_H
#define SIPSD_SIP_CHARS_H

#include <stdbool.h>
#include <stdint.h>

enum {
	SIP_CC_ALNUM = 1 << 0,
	SIP_CC_MARK = 1 << 1,           /* - _ . ! ~ * ' ( ) */
	SIP_CC_TOKEN = 1 << 2,          /* alphanum - . ! % * _ + ` ' ~ */
	SIP_CC_USER_UNRES = 1 << 3,     /* & = + $ , ; ? / */
	SIP_CC_PASS_EXTRA = 1 << 4,     /* & = + $ , */
	SIP_CC_PARAM_UNRES = 1 << 5,    /* [ ] / : & + $ */
	SIP_CC_HNV_UNRES = 1 << 6,      /* [ ] / ? : + $ */
	SIP_CC_WORD = 1 << 7,           /* Call-ID word characters */
	SIP_CC_RESERVED = 1 << 8,       /* ; / ? : @ & = + $ , */
	SIP_CC_URIC_OPAQUE = 1 << 9,    /* characters of an absoluteURI */
	SIP_CC_HOST = 1 << 10,          /* alphanum - . (and _ tolerated) */
	SIP_CC_SCHEME = 1 << 11,        /* alphanum + - . */
	SIP_CC_LWS = 1 << 12,           /* SP HTAB CR LF: white space inside a (folded) value */
	SIP_CC_ADDR_END = 1 << 13,      /* ; , SP HTAB CR LF: the end of an addr-spec URI */
	SIP_CC_URI_HOST_END = 1 << 14,  /* ; ? : the end of a URI host */
	SIP_CC_GEN_VALUE = 1 << 15,     /* token and : [ ] (a gen-value token or host) */
};

extern const uint16_t sip_char_class[256];

static inline bool sip_cc(unsigned char c, uint16_t cls)
{
	return (sip_char_class[c] & cls) != 0;
}

#define SIP_CC_UNRESERVED (SIP_CC_ALNUM | SIP_CC_MARK)

#endif
