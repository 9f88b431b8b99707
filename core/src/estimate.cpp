#include "tokenmeter/estimate.hpp"

#include "tokenmeter/assert.hpp"
#include "tokenmeter/json_input.hpp"

namespace tokenmeter {

namespace {

// Ids are echoed back shortened, so a hostile id cannot inflate the answer;
// cut at a character boundary, so the answer stays valid UTF-8 for JSON.
constexpr std::size_t echoed_id_bytes_max = 64;

Error unknown(std::string_view what, const std::string& id) {
    return make_error("unknown_" + std::string(what),
                      "unknown " + std::string(what) + " \"" + json_input::utf8_prefix(id, echoed_id_bytes_max) + "\"");
}

// The model a request names, null when it names none. Errors: the field's
// conversion error, unknown_model.
Result<const Model*, Error> requested_model(const Catalog& catalog, const RequestField<std::string>& field) {
    if (!field) return static_cast<const Model*>(nullptr);
    if (!*field) return unexpected(field->error());
    const std::string& id = field->value();
    if (id.empty()) return static_cast<const Model*>(nullptr);
    const Model* model = catalog.find_model(id);
    if (model == nullptr) return unexpected(unknown("model", id));
    return model;
}

int inputs_given(const EstimateRequest& request) {
    return (request.input_tokens ? 1 : 0) + (request.text ? 1 : 0) + (request.messages ? 1 : 0);
}

// The encoding the model's tokenizer counts with.
Result<const Encoding*, Error> encoding_for(const Model& model, const EncodingSource& encodings) {
    return encodings.encoding(encoding_kind_for(model.tokenizer));
}

// Steps 6 and 7 of the rule: the one input, checked and counted.
Result<TokenCount, Error> input_count(OperationKind operation, const Model& model, const EstimateRequest& request,
                                      const EncodingSource& encodings) {
    if (request.input_tokens) {
        if (!*request.input_tokens) return unexpected(request.input_tokens->error());
        return TokenCount{request.input_tokens->value(), model.exact()};
    }
    if (request.text) {
        if (!*request.text) return unexpected(request.text->error());
        auto encoding = encoding_for(model, encodings);
        if (!encoding) return unexpected(encoding.error());
        return count_text_tokens(**encoding, model.tokenizer, request.text->value());
    }
    TM_ASSERT(request.messages.has_value());
    if (operation != OperationKind::chat) return unexpected(make_error("invalid_value", "messages are for chat"));
    if (!*request.messages) return unexpected(request.messages->error());
    auto encoding = encoding_for(model, encodings);
    if (!encoding) return unexpected(encoding.error());
    return count_chat_tokens(**encoding, model.tokenizer, request.messages->value());
}

}  // namespace

Result<Estimate, Error> estimate(const Catalog& catalog, const EstimateRequest& request,
                                 const EncodingSource& encodings) {
    auto operation = operation_kind_from_string(request.operation);
    if (!operation) return unexpected(unknown("operation", request.operation));
    auto model = requested_model(catalog, request.model);
    if (!model) return unexpected(model.error());
    Estimate sized;
    sized.operation = *operation;
    sized.model = *model;
    if (*operation == OperationKind::avatar) {
        if (inputs_given(request) != 0 || request.max_output_tokens) {
            return unexpected(make_error("tokens_not_allowed", "an avatar has a flat price; send no token counts"));
        }
        return sized;
    }
    if (sized.model == nullptr) return unexpected(make_error("missing_field", "missing field model"));
    if (inputs_given(request) != 1) {
        return unexpected(make_error("missing_field", "send exactly one of input_tokens, text or messages"));
    }
    if (request.max_output_tokens) {
        if (!*request.max_output_tokens) return unexpected(request.max_output_tokens->error());
        sized.max_output_tokens = request.max_output_tokens->value();
    }
    auto counted = input_count(*operation, *sized.model, request, encodings);
    if (!counted) return unexpected(counted.error());
    sized.input_tokens = counted->tokens;
    sized.exact = counted->exact;
    return sized;
}

}  // namespace tokenmeter
