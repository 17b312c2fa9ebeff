/* chars.c: the RFC 3261 §25.1 character class table. */
#include "sip/chars.h"

#include <string.h>

uint16_t const sip_char_class[256] = {
#define A (SIP_CC_ALNUM | SIP_CC_TOKEN | SIP_CC_GEN_VALUE | SIP_CC_WORD | SIP_CC_URIC_OPAQUE | SIP_CC_HOST | SIP_CC_SCHEME)
	/* Letters and digits. */
	['0'] = A, ['1'] = A, ['2'] = A, ['3'] = A, ['4'] = A, ['5'] = A, ['6'] = A, ['7'] = A,
	['8'] = A, ['9'] = A,
	['a'] = A, ['b'] = A, ['c'] = A, ['d'] = A, ['e'] = A, ['f'] = A, ['g'] = A, ['h'] = A,
	['i'] = A, ['j'] = A, ['k'] = A, ['l'] = A, ['m'] = A, ['n'] = A, ['o'] = A, ['p'] = A,
	['q'] = A, ['r'] = A, ['s'] = A, ['t'] = A, ['u'] = A, ['v'] = A, ['w'] = A, ['x'] = A,
	['y'] = A, ['z'] = A,
	['A'] = A, ['B'] = A, ['C'] = A, ['D'] = A, ['E'] = A, ['F'] = A, ['G'] = A, ['H'] = A,
	['I'] = A, ['J'] = A, ['K'] = A, ['L'] = A, ['M'] = A, ['N'] = A, ['O'] = A, ['P'] = A,
	['Q'] = A, ['R'] = A, ['S'] = A, ['T'] = A, ['U'] = A, ['V'] = A, ['W'] = A, ['X'] = A,
	['Y'] = A, ['Z'] = A,
#undef A
	['-'] = SIP_CC_MARK | SIP_CC_TOKEN | SIP_CC_GEN_VALUE | SIP_CC_WORD | SIP_CC_URIC_OPAQUE | SIP_CC_HOST | SIP_CC_SCHEME,
	['_'] = SIP_CC_MARK | SIP_CC_TOKEN | SIP_CC_GEN_VALUE | SIP_CC_WORD | SIP_CC_URIC_OPAQUE | SIP_CC_HOST,
	['.'] = SIP_CC_MARK | SIP_CC_TOKEN | SIP_CC_GEN_VALUE | SIP_CC_WORD | SIP_CC_URIC_OPAQUE | SIP_CC_HOST | SIP_CC_SCHEME,
	['!'] = SIP_CC_MARK | SIP_CC_TOKEN | SIP_CC_GEN_VALUE | SIP_CC_WORD | SIP_CC_URIC_OPAQUE,
	['~'] = SIP_CC_MARK | SIP_CC_TOKEN | SIP_CC_GEN_VALUE | SIP_CC_WORD | SIP_CC_URIC_OPAQUE,
	['*'] = SIP_CC_MARK | SIP_CC_TOKEN | SIP_CC_GEN_VALUE | SIP_CC_WORD | SIP_CC_URIC_OPAQUE,
	['\''] = SIP_CC_MARK | SIP_CC_TOKEN | SIP_CC_GEN_VALUE | SIP_CC_WORD | SIP_CC_URIC_OPAQUE,
	['('] = SIP_CC_MARK | SIP_CC_WORD | SIP_CC_URIC_OPAQUE,
	[')'] = SIP_CC_MARK | SIP_CC_WORD | SIP_CC_URIC_OPAQUE,
	['%'] = SIP_CC_TOKEN | SIP_CC_GEN_VALUE | SIP_CC_WORD | SIP_CC_URIC_OPAQUE,
	['+'] = SIP_CC_TOKEN | SIP_CC_GEN_VALUE | SIP_CC_WORD | SIP_CC_USER_UNRES | SIP_CC_PASS_EXTRA | SIP_CC_PARAM_UNRES |
		SIP_CC_HNV_UNRES | SIP_CC_RESERVED | SIP_CC_URIC_OPAQUE | SIP_CC_SCHEME,
	['`'] = SIP_CC_TOKEN | SIP_CC_GEN_VALUE | SIP_CC_WORD,
	['&'] = SIP_CC_USER_UNRES | SIP_CC_PASS_EXTRA | SIP_CC_PARAM_UNRES | SIP_CC_RESERVED |
		SIP_CC_URIC_OPAQUE,
	['='] = SIP_CC_USER_UNRES | SIP_CC_PASS_EXTRA | SIP_CC_RESERVED | SIP_CC_URIC_OPAQUE,
	['$'] = SIP_CC_USER_UNRES | SIP_CC_PASS_EXTRA | SIP_CC_PARAM_UNRES | SIP_CC_HNV_UNRES |
		SIP_CC_RESERVED | SIP_CC_URIC_OPAQUE,
	[','] = SIP_CC_ADDR_END | SIP_CC_USER_UNRES | SIP_CC_PASS_EXTRA | SIP_CC_RESERVED | SIP_CC_URIC_OPAQUE,
	[';'] = SIP_CC_ADDR_END | SIP_CC_URI_HOST_END | SIP_CC_USER_UNRES | SIP_CC_RESERVED | SIP_CC_URIC_OPAQUE,
	['?'] = SIP_CC_URI_HOST_END | SIP_CC_USER_UNRES | SIP_CC_HNV_UNRES | SIP_CC_RESERVED | SIP_CC_WORD | SIP_CC_URIC_OPAQUE,
	['/'] = SIP_CC_USER_UNRES | SIP_CC_PARAM_UNRES | SIP_CC_HNV_UNRES | SIP_CC_RESERVED |
		SIP_CC_WORD | SIP_CC_URIC_OPAQUE,
	[':'] = SIP_CC_GEN_VALUE | SIP_CC_URI_HOST_END | SIP_CC_PARAM_UNRES | SIP_CC_HNV_UNRES | SIP_CC_RESERVED | SIP_CC_WORD | SIP_CC_URIC_OPAQUE,
	['@'] = SIP_CC_RESERVED | SIP_CC_URIC_OPAQUE,
	['['] = SIP_CC_GEN_VALUE | SIP_CC_PARAM_UNRES | SIP_CC_HNV_UNRES | SIP_CC_WORD | SIP_CC_URIC_OPAQUE,
	[']'] = SIP_CC_GEN_VALUE | SIP_CC_PARAM_UNRES | SIP_CC_HNV_UNRES | SIP_CC_WORD | SIP_CC_URIC_OPAQUE,
	['<'] = SIP_CC_WORD,
	['>'] = SIP_CC_WORD,
	['\\'] = SIP_CC_WORD,
	['"'] = SIP_CC_WORD,
	['{'] = SIP_CC_WORD,
	['}'] = SIP_CC_WORD,
	['#'] = SIP_CC_URIC_OPAQUE,
	[' '] = SIP_CC_LWS | SIP_CC_ADDR_END,
	['\t'] = SIP_CC_LWS | SIP_CC_ADDR_END,
	['\r'] = SIP_CC_LWS | SIP_CC_ADDR_END,
	['\n'] = SIP_CC_LWS | SIP_CC_ADDR_END,
};
