/** Herald's version, sent in connect replies, the X-Herald-Version header and the info API. */
export const HERALD_VERSION = '0.1.0';
