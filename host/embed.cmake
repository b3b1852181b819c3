# Writes INPUT into OUTPUT as a C++ string constant (a raw literal split in chunks, since
# compilers limit the length of one literal).
file(READ ${INPUT} content)
string(LENGTH "${content}" length)
set(out "// Generated from docs/openapi.yaml; do not edit.\nnamespace slmhub::host {\nextern const char* const kOpenApiYaml;\nconst char* const kOpenApiYaml =\n")
set(pos 0)
while(pos LESS length)
  string(SUBSTRING "${content}" ${pos} 4000 chunk)
  string(APPEND out "R\"slmhub_embed(${chunk})slmhub_embed\"\n")
  math(EXPR pos "${pos} + 4000")
endwhile()
string(APPEND out ";\n}  // namespace slmhub::host\n")
file(WRITE ${OUTPUT} "${out}")
