/** airlock's version, written into signature payloads as `creator: "airlock <VERSION>"`. */
export const VERSION = "0.1.0";
