/* cmd_cert.c: `sipsctl cert`: a certificate's chain verdict, its SIP domain
 * identities (RFC 5922 §7.1) and the verdict for a domain (§7.2, RFC 5924). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "base/str.h"
#include "tls/identity.h"

#include "sipsctl.h"

/* A certificate file larger than this is not a certificate. */
#define CERT_FILE_MAX (1024 * 1024)

struct cert_opts {
	const char *domain;
	const char *ca;
	const char *crl;
	const char *chain;
	const char *cert;
	enum tls_eku_mode eku;
	enum tls_role role;
	bool legacy_cn;
};

static void usage(FILE *out, bool full)
{
	fprintf(
	    out,
	    "usage: sipsctl cert [--domain D] [--ca FILE|DIR] [--crl FILE] [--chain FILE]\n"
	    "                    [--eku strict|lenient] [--role server|client] [--no-legacy-cn]\n"
	    "                    CERT.pem\n");
	if (!full) {
		fprintf(out, "(sipsctl cert --help for details)\n");
		return;
	}
	fprintf(out,
		"\n"
		"Prints the chain verdict, the certificate's SIP domain identities (RFC 5922\n"
		"§7.1) one per line and, with --domain, whether it authenticates domain D\n"
		"(RFC 5922 §7.2, RFC 5924 EKU policy).\n"
		"\n"
		"  --domain D       the SIP domain the peer must prove (e.g. example.net)\n"
		"  --ca FILE|DIR    trust anchors: PEM bundle or hashed directory\n"
		"                   (default: the system's trust store)\n"
		"  --crl FILE       PEM CRLs; revocation of the certificate is checked\n"
		"  --chain FILE     PEM intermediates sent with the certificate\n"
		"                   (certificates after the first in CERT.pem count too)\n"
		"  --eku MODE       lenient (default): accept serverAuth/clientAuth or\n"
		"                   anyExtendedKeyUsage without id-kp-sipDomain; strict: refuse\n"
		"  --role ROLE      the holder is a TLS server (default) or a TLS client\n"
		"  --no-legacy-cn   never use the Subject CN as an identity\n"
		"\n"
		"Exit status: 0 trusted (and authenticated for D), 1 not, 2 usage or I/O error.\n");
}

/* `--name VALUE` or `--name=VALUE`. Returns the value (advancing *i), NULL
 * when `arg` is another option, or sets *missing. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
	const char *arg = argv[*i];
	size_t n = strlen(name);
	if (strncmp(arg, name, n) != 0)
		return NULL;
	if (arg[n] == '=')
		return arg + n + 1;
	if (arg[n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	(*i)++;
	return argv[*i];
}

/* Returns SIPSCTL_OK, or SIPSCTL_USAGE after printing why. */
static int parse_args(int argc, char **argv, struct cert_opts *o, bool *help)
{
	memset(o, 0, sizeof(*o));
	o->eku = TLS_EKU_LENIENT;
	o->role = TLS_ROLE_SERVER;
	o->legacy_cn = true;
	*help = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v;
		bool missing = false;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			*help = true;
			return SIPSCTL_OK;
		}
		if (!strcmp(a, "--no-legacy-cn")) {
			o->legacy_cn = false;
		} else if ((v = opt_value(argc, argv, &i, "--domain", &missing))) {
			o->domain = v;
		} else if ((v = opt_value(argc, argv, &i, "--ca", &missing))) {
			o->ca = v;
		} else if ((v = opt_value(argc, argv, &i, "--crl", &missing))) {
			o->crl = v;
		} else if ((v = opt_value(argc, argv, &i, "--chain", &missing))) {
			o->chain = v;
		} else if ((v = opt_value(argc, argv, &i, "--eku", &missing))) {
			if (!strcmp(v, "strict")) {
				o->eku = TLS_EKU_STRICT;
			} else if (!strcmp(v, "lenient")) {
				o->eku = TLS_EKU_LENIENT;
			} else {
				fprintf(
				    stderr,
				    "sipsctl cert: --eku takes 'strict' or 'lenient', not '%s'\n",
				    v);
				return SIPSCTL_USAGE;
			}
		} else if ((v = opt_value(argc, argv, &i, "--role", &missing))) {
			if (!strcmp(v, "server")) {
				o->role = TLS_ROLE_SERVER;
			} else if (!strcmp(v, "client")) {
				o->role = TLS_ROLE_CLIENT;
			} else {
				fprintf(
				    stderr,
				    "sipsctl cert: --role takes 'server' or 'client', not '%s'\n",
				    v);
				return SIPSCTL_USAGE;
			}
		} else if (missing) {
			fprintf(stderr, "sipsctl cert: %s needs a value\n", a);
			return SIPSCTL_USAGE;
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "sipsctl cert: unknown option '%s'\n", a);
			return SIPSCTL_USAGE;
		} else if (o->cert) {
			fprintf(stderr, "sipsctl cert: one certificate file only ('%s' and '%s')\n",
				o->cert, a);
			return SIPSCTL_USAGE;
		} else {
			o->cert = a;
		}
	}
	if (!o->cert) {
		fprintf(stderr, "sipsctl cert: no certificate file given\n");
		return SIPSCTL_USAGE;
	}
	if (o->domain) {
		size_t n = strlen(o->domain);
		if (n == 0 || n > TLS_IDENTITY_MAX_NAME) {
			fprintf(stderr, "sipsctl cert: --domain must be 1 to %d characters\n",
				TLS_IDENTITY_MAX_NAME);
			return SIPSCTL_USAGE;
		}
	}
	return SIPSCTL_OK;
}

/* Read every certificate of a PEM file (or one DER certificate) into `sk`.
 * Returns the count, or -errno / -EBADMSG; prints the reason. */
static int load_certs(const char *path, STACK_OF(X509) * sk)
{
	struct stat st;
	int count = 0;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "sipsctl cert: cannot read '%s': %s\n", path, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, "sipsctl cert: '%s' is not a regular file\n", path);
		return -EINVAL;
	}
	if (st.st_size > CERT_FILE_MAX) {
		fprintf(stderr, "sipsctl cert: '%s' is too large for a certificate file\n", path);
		return -EFBIG;
	}
	BIO *bio = BIO_new_file(path, "rb");
	if (!bio) {
		fprintf(stderr, "sipsctl cert: cannot open '%s': %s\n", path, strerror(errno));
		return -EIO;
	}
	X509 *x;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			BIO_free(bio);
			return -ENOMEM;
		}
		count++;
	}
	if (count == 0) {
		/* Not PEM: perhaps one DER certificate. */
		(void)BIO_reset(bio);
		x = d2i_X509_bio(bio, NULL);
		if (x && sk_X509_push(sk, x))
			count = 1;
		else
			X509_free(x);
	}
	BIO_free(bio);
	ERR_clear_error();
	if (count == 0) {
		fprintf(stderr, "sipsctl cert: '%s' holds no PEM or DER certificate\n", path);
		return -EBADMSG;
	}
	return count;
}

/* Check that a CRL file can be read and holds at least one PEM CRL. */
static int check_crl_file(const char *path)
{
	BIO *bio = BIO_new_file(path, "r");
	X509_CRL *crl;
	if (!bio) {
		fprintf(stderr, "sipsctl cert: cannot read CRL '%s': %s\n", path, strerror(errno));
		ERR_clear_error();
		return -ENOENT;
	}
	crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (!crl) {
		fprintf(stderr, "sipsctl cert: '%s' holds no PEM CRL\n", path);
		return -EBADMSG;
	}
	X509_CRL_free(crl);
	return 0;
}

static int make_store(const struct cert_opts *o, X509_STORE **store)
{
	const char *file = NULL, *dir = NULL;
	struct stat st;
	int rc;

	if (o->ca) {
		if (stat(o->ca, &st) != 0) {
			fprintf(stderr, "sipsctl cert: cannot read CA '%s': %s\n", o->ca,
				strerror(errno));
			return -ENOENT;
		}
		if (S_ISDIR(st.st_mode)) {
			dir = o->ca;
		} else {
			/* Checked first for a precise message. */
			STACK_OF(X509) *tmp = sk_X509_new_null();
			rc = tmp ? load_certs(o->ca, tmp) : -ENOMEM;
			sk_X509_pop_free(tmp, X509_free);
			if (rc < 0)
				return rc;
			file = o->ca;
		}
	}
	if (o->crl && (rc = check_crl_file(o->crl)) < 0)
		return rc;
	rc = tls_store_create(file, dir, o->crl, store);
	if (rc < 0)
		fprintf(stderr, "sipsctl cert: cannot load trust store (CA %s%s%s): %s\n",
			o->ca ? o->ca : "system default", o->crl ? ", CRL " : "",
			o->crl ? o->crl : "", strerror(-rc));
	return rc;
}

static void print_name(BIO *out, const char *label, const X509_NAME *name)
{
	BIO_printf(out, "%s: ", label);
	/* RFC 2253 form; control and non-ASCII bytes escaped. */
	X509_NAME_print_ex(out, name, 0, XN_FLAG_RFC2253);
	BIO_printf(out, "\n");
}

static void print_cert(BIO *out, const char *path, X509 *cert)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	BIO_printf(out, "certificate: %s\n", path);
	print_name(out, "subject", X509_get_subject_name(cert));
	print_name(out, "issuer", X509_get_issuer_name(cert));
	BIO_printf(out, "not-before: ");
	ASN1_TIME_print(out, X509_get0_notBefore(cert));
	BIO_printf(out, "\nnot-after: ");
	ASN1_TIME_print(out, X509_get0_notAfter(cert));
	BIO_printf(out, "\n");
	if (X509_digest(cert, EVP_sha256(), md, &mdlen)) {
		BIO_printf(out, "sha256: ");
		for (unsigned int i = 0; i < mdlen; i++)
			BIO_printf(out, "%s%02X", i ? ":" : "", md[i]);
		BIO_printf(out, "\n");
	}
}

int sipsctl_cmd_cert(int argc, char **argv)
{
	struct cert_opts o;
	bool help;
	int rc = parse_args(argc, argv, &o, &help);
	if (rc != SIPSCTL_OK) {
		usage(stderr, false);
		return rc;
	}
	if (help) {
		usage(stdout, true);
		return SIPSCTL_OK;
	}

	int status = SIPSCTL_USAGE;
	STACK_OF(X509) *certs = sk_X509_new_null();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	X509_STORE *store = NULL;
	BIO *out = BIO_new_fp(stdout, BIO_NOCLOSE);
	if (!certs || !untrusted || !out) {
		fprintf(stderr, "sipsctl cert: out of memory\n");
		goto done;
	}
	if (load_certs(o.cert, certs) < 0)
		goto done;
	if (o.chain && load_certs(o.chain, untrusted) < 0)
		goto done;
	if (make_store(&o, &store) < 0)
		goto done;
	X509 *leaf = sk_X509_value(certs, 0);
	/* Certificates after the first in CERT.pem are intermediates. */
	for (int i = 1; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);
		if (!X509_up_ref(x))
			goto done;
		if (!sk_X509_push(untrusted, x)) {
			X509_free(x);
			goto done;
		}
	}

	print_cert(out, o.cert, leaf);

	/* 1. RFC 5280 chain. */
	int x509_err = 0, depth = 0;
	enum tls_verdict chain = tls_chain_verify(store, leaf, untrusted, &x509_err, &depth);
	if (chain == TLS_VERDICT_OK)
		BIO_printf(out, "chain: ok\n");
	else
		BIO_printf(out, "chain: %s (%s, depth %d)\n", tls_verdict_name(chain),
			   X509_verify_cert_error_string(x509_err), depth);

	/* 2. Identities and EKU (RFC 5922 §7.1, RFC 5924). */
	struct tls_identity_policy pol = {o.legacy_cn, o.eku};
	struct str want = o.domain ? str_from_cstr(o.domain) : STR_NULL;
	static struct tls_identity_set ids; /* 2+ KB: not on the stack */
	enum tls_verdict names = tls_identity_authenticate(leaf, &pol, o.role, want, &ids);
	if (ids.bad_name) {
		BIO_printf(out, "identity-refused: %s\n", ids.bad_desc);
	} else {
		BIO_printf(out, "identity-source: %s\n",
			   tls_identity_source_name((enum tls_identity_source)ids.source));
		for (size_t i = 0; i < ids.count; i++) {
			struct str n = tls_identity_set_name(&ids, i);
			BIO_printf(out, "identity: %.*s\n", (int)n.len, n.s);
		}
		if (ids.ignored)
			BIO_printf(out, "identity-ignored: %u malformed entries\n", ids.ignored);
		if (ids.truncated)
			BIO_printf(out, "identity-truncated: more than %d names or %d bytes\n",
				   TLS_IDENTITY_MAX_NAMES, TLS_IDENTITY_BUF_SIZE);
	}
	enum tls_verdict eku = tls_eku_check(leaf, o.role, o.eku);
	BIO_printf(out, "eku: %s (role %s, policy %s)\n", eku == TLS_VERDICT_OK ? "ok" : "refused",
		   o.role == TLS_ROLE_SERVER ? "server" : "client",
		   o.eku == TLS_EKU_STRICT ? "strict" : "lenient");

	/* 3. The verdict: the chain first, then names, EKU and the domain. */
	enum tls_verdict v = chain != TLS_VERDICT_OK ? chain : names;
	if (o.domain) {
		char set[1024];
		tls_identity_set_format(&ids, set, sizeof(set));
		BIO_printf(out, "wanted: %s\nfound: %s\n", o.domain, set);
	}
	BIO_printf(out, "verdict: %s\n", tls_verdict_name(v));
	if (v != TLS_VERDICT_OK) {
		char reason[1024];
		tls_verdict_format(reason, sizeof(reason), v, x509_err, want, &ids);
		BIO_printf(out, "reason: %s\n", reason);
	}
	status = v == TLS_VERDICT_OK ? SIPSCTL_OK : SIPSCTL_FAIL;
done:
	BIO_free(out);
	fflush(stdout);
	X509_STORE_free(store);
	sk_X509_pop_free(certs, X509_free);
	sk_X509_pop_free(untrusted, X509_free);
	ERR_clear_error();
	return status;
}
