/* HDF5 helpers shared by the dataset reader and writer. */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "mmupt/strutil.h"

const char *const ds_field_names[DS_N_FIELDS] = {"id", "source", "problem", "answer", "image_offset", "images",
                                                   "provenance"};

void ds_type_describe(hid_t type, char *buf, size_t n)
{
    size_t size = H5Tget_size(type);
    switch (H5Tget_class(type)) {
    case H5T_INTEGER:
        snprintf(buf, n, "%sint%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", size * 8);
        return;
    case H5T_FLOAT: snprintf(buf, n, "float%zu", size * 8); return;
    case H5T_STRING:
        snprintf(buf, n, "%s", H5Tis_variable_str(type) > 0 ? "variable-length string" : "fixed-length string");
        return;
    case H5T_VLEN: {
        char inner[64] = "?";
        hid_t super = H5Tget_super(type);
        if (super >= 0) {
            ds_type_describe(super, inner, sizeof inner);
            H5Tclose(super);
        }
        snprintf(buf, n, "variable-length sequence of %s", inner);
        return;
    }
    case H5T_COMPOUND: snprintf(buf, n, "compound"); return;
    case H5T_ARRAY: snprintf(buf, n, "array"); return;
    case H5T_ENUM: snprintf(buf, n, "enum"); return;
    case H5T_OPAQUE: snprintf(buf, n, "opaque"); return;
    case H5T_REFERENCE: snprintf(buf, n, "reference"); return;
    case H5T_BITFIELD: snprintf(buf, n, "bitfield"); return;
    case H5T_TIME: snprintf(buf, n, "time"); return;
    default: snprintf(buf, n, "an unknown type"); return;
    }
}

long ds_utf8_invalid_at(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t k = utf8_seq_len(u + i, len - i);
        if (k == 0) return (long)i;
        i += k;
    }
    return -1;
}

hid_t ds_str_type(void)
{
    /* These calls fail only when HDF5 itself is broken: fatal, not input errors. */
    hid_t t = H5Tcopy(H5T_C_S1);
    MMUPT_CHECK(t >= 0 && H5Tset_size(t, H5T_VARIABLE) >= 0 && H5Tset_cset(t, H5T_CSET_UTF8) >= 0);
    return t;
}

hid_t ds_blob_type(void)
{
    hid_t t = H5Tvlen_create(H5T_NATIVE_UINT8);
    MMUPT_CHECK(t >= 0);
    return t;
}
