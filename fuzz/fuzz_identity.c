/* fuzz_identity.c: libFuzzer target for RFC 5922 §7.1 identity extraction
 * and §7.2 matching on arbitrary DER certificates (RFC 5924 EKU check too). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "tls/identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *p = data;
	X509 *x = d2i_X509(NULL, &p, (long)size);
	if (!x)
		return 0;
	static struct tls_identity_set ids;
	struct tls_identity_policy pol = TLS_IDENTITY_POLICY_DEFAULT;
	int rc = tls_identity_extract(x, &pol, &ids);
	if (rc == 0) {
		/* Every extracted name matches itself, and only whole names:
		 * a name with one byte more never matches (no suffix match). */
		for (size_t i = 0; i < ids.count; i++) {
			struct str n = tls_identity_set_name(&ids, i);
			if (!tls_identity_match(&ids, n))
				abort();
			char longer[TLS_IDENTITY_MAX_NAME + 2];
			if (n.len + 1 < sizeof(longer)) {
				longer[0] = 'x';
				memcpy(longer + 1, n.s, n.len);
				struct str l = {longer, n.len + 1};
				bool any = false;
				for (size_t k = 0; k < ids.count; k++)
					any |= str_case_eq(tls_identity_set_name(&ids, k), l);
				if (!any && tls_identity_match(&ids, l))
					abort();
			}
		}
	} else if (ids.count != 0) {
		abort(); /* a refused certificate yields no identity */
	}
	tls_eku_check(x, TLS_ROLE_SERVER, TLS_EKU_STRICT);
	tls_eku_check(x, TLS_ROLE_CLIENT, TLS_EKU_LENIENT);
	X509_free(x);
	return 0;
}
